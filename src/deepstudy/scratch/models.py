"""Networks built from the NumPy layers, by name.  A builder is
`fn(in_features, outputs, rng, *, options)`; its keyword-only parameters are the `model.*`
options of a run."""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np

from ..config import Option, builder_options
from ..errors import ConfigError
from .layers import GELU, Layer, Linear, ReLU, Sequential, Sigmoid, Tanh

Dtype = Literal["float32", "float64"]


def linear(in_features: int, outputs: int, rng: np.random.Generator, *, dtype: Dtype = "float32") -> Sequential:
    """One Linear layer, randomly initialised.  With MSE it is linear regression; with softmax
    cross-entropy, softmax (multinomial logistic) regression."""
    return Sequential(Linear(in_features, outputs, rng, np.dtype(dtype)))


ACTIVATIONS: dict[str, Callable[[], Layer]] = {
    "relu": ReLU, "gelu": GELU, "gelu_tanh": lambda: GELU("tanh"), "sigmoid": Sigmoid, "tanh": Tanh,
}


def mlp(in_features: int, outputs: int, rng: np.random.Generator, *, hidden: tuple[int, ...] = (256, 128),
        activation: Literal["relu", "gelu", "gelu_tanh", "sigmoid", "tanh"] = "relu",
        dtype: Dtype = "float32") -> Sequential:
    """Linear layers of the `hidden` widths, each followed by the activation, then a Linear
    layer to the outputs.  He initialisation for ReLU and GELU, Xavier for sigmoid and tanh."""
    if not hidden or min(hidden) < 1:
        raise ConfigError(f"model.hidden needs at least one positive width, got {hidden}")
    init = "xavier" if activation in ("sigmoid", "tanh") else "he"
    layers: list[Layer] = []
    width = in_features
    for h in hidden:
        layers += [Linear(width, h, rng, np.dtype(dtype), init), ACTIVATIONS[activation]()]
        width = h
    layers.append(Linear(width, outputs, rng, np.dtype(dtype), "xavier"))
    return Sequential(*layers)


MODELS: dict[str, Callable[..., Sequential]] = {"linear": linear, "mlp": mlp}


def _get(name: str) -> Callable[..., Sequential]:
    if name not in MODELS:
        raise ConfigError(f"unknown NumPy model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def model_options(name: str) -> dict[str, Option]:
    return builder_options(_get(name))


def create_model(name: str, in_features: int, outputs: int, rng: np.random.Generator, **options) -> Sequential:
    return _get(name)(in_features, outputs, rng, **options)
