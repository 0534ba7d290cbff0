"""Models, registered by name as in timm and torchvision.

A builder is `fn(in_shape, num_classes, *, option=default, ...)`: the first two come from the
data, the keyword-only ones are the `model.*` options a user can set.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable

import torch.nn as nn

from ..config import Option, builder_options
from ..errors import ConfigError
from ..registry import import_submodules

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, *, overwrite: bool = False):
    """Decorator.  overwrite=True lets a notebook cell that defines a model run twice."""
    def wrap(fn):
        if name in _MODELS and not overwrite:
            raise ValueError(f"model {name!r} is already registered")
        builder_options(fn)  # fail at import time if an option has no default
        _MODELS[name] = fn
        return fn
    return wrap


def list_models(pattern: str = "*") -> list[str]:
    _import_all()
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def get_builder(name: str) -> Callable[..., nn.Module]:
    _import_all()
    if name not in _MODELS:
        close = difflib.get_close_matches(str(name), _MODELS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint}; known: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def model_options(name: str) -> dict[str, Option]:
    return builder_options(get_builder(name))


def create_model(name: str, in_shape, num_classes: int, **options) -> nn.Module:
    return get_builder(name)(tuple(in_shape), num_classes, **options)


def _import_all():
    import_submodules(__name__, skip=("common", "summary", "weights"))
