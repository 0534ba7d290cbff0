"""Things registered by name: models, datasets and recipes.

Adding a model, dataset or recipe is adding a file: importing every module of its package runs
the decorators that register it, so no list elsewhere needs editing.  The modules are imported
on the first look-up, not at `import deepstudy`, so that a command pays only for what it uses."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import pkgutil
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def import_submodules(package: str, skip: tuple[str, ...] = ()) -> None:
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in skip and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


class Registry(Generic[T]):
    """A name → object table filled by the modules of `package`.

    kind: what the entries are called in messages ("model"); hint: what a user who mistyped a
    name is told when nothing is close."""

    def __init__(self, kind: str, package: str, skip: tuple[str, ...] = (), hint: str = ""):
        self.kind, self.package, self.skip, self.hint = kind, package, skip, hint
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T, overwrite: bool = False) -> T:
        """overwrite=True lets a notebook cell that defines an entry run twice."""
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Take an entry out again (a test's, or a notebook's experiment)."""
        self._entries.pop(name, None)

    def names(self, pattern: str = "*") -> list[str]:
        """The names matching `pattern`: a glob when it has wildcards ('resnet*'), otherwise any
        name containing it ('trec' finds every trec-* recipe)."""
        import_submodules(self.package, self.skip)
        if not any(c in pattern for c in "*?["):
            pattern = f"*{pattern}*"
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def get(self, name: str) -> T:
        import_submodules(self.package, self.skip)
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else (f"; {self.hint}" if self.hint else "")
            raise ConfigError(f"unknown {self.kind} {name!r}{hint}")
        return self._entries[name]
