"""Importing every module of a package, so that adding a model, dataset or recipe is adding a
file: its decorators register it, and no list elsewhere needs editing."""

import importlib
import pkgutil


def import_submodules(package: str, skip: tuple[str, ...] = ()) -> None:
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in skip and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
