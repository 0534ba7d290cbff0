"""Datasets, registered by name.  A dataset builder takes a DataContext (where to look,
which seed, which device) plus keyword-only options (`data.*` on the command line) and
returns the splits ready for training."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..config import Option, builder_options
from ..errors import ConfigError
from .tensors import ImageTensors, Normalize

_DATASETS: dict[str, Callable] = {}


def register_dataset(name: str):
    def wrap(fn):
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        _DATASETS[name] = fn
        return fn
    return wrap


def list_datasets() -> list[str]:
    _import_all()
    return sorted(_DATASETS)


def _get(name: str) -> Callable:
    _import_all()
    if name not in _DATASETS:
        close = difflib.get_close_matches(str(name), _DATASETS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown dataset {name!r}{hint}; known: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name]


def dataset_options(name: str) -> dict[str, Option]:
    return builder_options(_get(name))


def load_dataset(name: str, ctx: "DataContext", **options):
    return _get(name)(ctx, **options)


@dataclass
class DataContext:
    root: Path  # the data root (may be read-only)
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    log: Callable[[str], None] = print


@dataclass
class ClassificationData:
    """Train/val/test image tensors and what a model and `predict` need to know about them."""

    name: str
    train: ImageTensors
    val: ImageTensors
    test: ImageTensors
    classes: list[str]
    normalize: Normalize
    source: str  # where the files were read from
    preprocess: str = "fit"  # how `predict` turns a user's image into an input: digits | fit | crop
    augment: Callable | None = None  # uint8 batch, generator -> uint8 batch (training only)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])

    def info(self) -> dict:
        """Everything `eval` and `predict` need to rebuild inputs, as plain JSON."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "in_shape": list(self.in_shape),
            "mean": list(self.normalize.mean),
            "std": list(self.normalize.std),
            "preprocess": self.preprocess,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "source": self.source,
        }


def _import_all():
    from . import vision  # noqa: F401  (registers mnist, fashion_mnist)
