"""Models, registered by name as in timm and torchvision.

A builder is `fn(in_shape, num_classes, *, option=default, ...)`: the first two come from the
data, the keyword-only ones are the `model.*` options a user can set.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..config import Option, builder_options
from ..registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model", __name__, skip=("common", "summary", "weights"), hint="`deepstudy.models.list_models()` lists them")


def register_model(name: str, *, overwrite: bool = False):
    """Decorator.  overwrite=True lets a notebook cell that defines a model run twice."""
    def wrap(fn):
        builder_options(fn)  # fail at import time if an option has no default
        return MODELS.add(name, fn, overwrite)
    return wrap


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)


def get_builder(name: str) -> Callable[..., nn.Module]:
    return MODELS.get(name)


def model_options(name: str) -> dict[str, Option]:
    return builder_options(get_builder(name))


def create_model(name: str, in_shape, num_classes: int, **options) -> nn.Module:
    return get_builder(name)(tuple(in_shape), num_classes, **options)
