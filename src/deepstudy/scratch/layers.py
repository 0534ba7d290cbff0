"""Layers with a forward and a backward pass: backpropagation written out by hand, in NumPy.

Every layer works on a batch: x has shape (N, features), one row per example.

    forward(x)   computes the output y and remembers what backward will need.
    backward(g)  receives g = dL/dy, the gradient of the loss L with respect to this layer's
                 output (same shape as y); stores the gradients of the layer's parameters in
                 `grads`; and returns dL/dx, which is the g of the layer before.

That is the chain rule, one layer at a time:  dL/dx = dL/dy · dy/dx.  For an element-wise
activation y = f(x) the Jacobian dy/dx is diagonal, so the product is element-wise:
dL/dx = g * f'(x).  For Linear it is a matrix product.

Parameters live in `params` (name -> array).  An optimizer changes those arrays in place, so
the layer always computes with the current values.  Every array keeps the dtype it was made
with: float32 for training, float64 for checking gradients.  The constants below are Python
floats on purpose: a NumPy float64 scalar would turn a float32 computation into a float64 one.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .special import normal_cdf, normal_pdf


class Layer:
    """The interface every layer shares.  Layers without parameters keep the empty dicts."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def __repr__(self) -> str:
        return type(self).__name__


class Linear(Layer):
    """y = x @ W + b        x: (N, n_in)   W: (n_in, n_out)   b: (n_out,)   y: (N, n_out)

    W is stored (n_in, n_out) so the forward pass reads as the formula; PyTorch's nn.Linear
    stores the transpose.

    init: how the random starting weights are drawn.
      "uniform"  W and b from U(-1/√n_in, 1/√n_in): PyTorch's nn.Linear default
      "he"       W from N(0, 2/n_in), b = 0: keeps the scale of ReLU/GELU activations the same
                 from layer to layer (He et al. 2015), so deep stacks neither fade nor blow up
      "xavier"   W from U(±√(6/(n_in + n_out))), b = 0: the same idea for sigmoid and tanh
                 (Glorot & Bengio 2010)
    """

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float32,
                 init: Literal["uniform", "he", "xavier"] = "uniform"):
        if init == "he":
            W = rng.normal(0.0, math.sqrt(2 / n_in), (n_in, n_out))
            b = np.zeros(n_out)
        elif init == "xavier":
            limit = math.sqrt(6 / (n_in + n_out))
            W = rng.uniform(-limit, limit, (n_in, n_out))
            b = np.zeros(n_out)
        elif init == "uniform":
            limit = 1 / math.sqrt(n_in)
            W = rng.uniform(-limit, limit, (n_in, n_out))
            b = rng.uniform(-limit, limit, n_out)
        else:
            raise ValueError(f"unknown init {init!r}")
        self.W, self.b = W.astype(dtype), b.astype(dtype)
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, g):
        # y[n,j] = Σ_i x[n,i]·W[i,j] + b[j].  Each example n contributes to every weight, so the
        # weight gradients are sums over the batch:
        #   dL/dW[i,j] = Σ_n x[n,i]·g[n,j]    ->  x.T @ g
        #   dL/db[j]   = Σ_n g[n,j]           ->  g summed over the batch
        #   dL/dx[n,i] = Σ_j g[n,j]·W[i,j]    ->  g @ W.T
        self.dW = self.x.T @ g
        self.db = g.sum(axis=0)
        return g @ self.W.T

    @property
    def params(self):
        return {"W": self.W, "b": self.b}

    @property
    def grads(self):
        return {"W": self.dW, "b": self.db}

    def __repr__(self):
        return f"Linear({self.W.shape[0]}->{self.W.shape[1]})"


class Sigmoid(Layer):
    """y = σ(x) = 1 / (1 + e^(−x))"""

    def forward(self, x):
        # e^(−x) overflows for very negative x; e^(−|x|) never does.  For x < 0 use the equal
        # form σ(x) = e^x / (1 + e^x).
        e = np.exp(-np.abs(x))
        self.y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.y

    def backward(self, g):
        # σ'(x) = e^(−x) / (1 + e^(−x))² = σ(x)·(1 − σ(x)): the output is all backward needs
        return g * self.y * (1 - self.y)


class Tanh(Layer):
    """y = tanh(x)"""

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        # tanh'(x) = 1 − tanh²(x)
        return g * (1 - self.y * self.y)


class ReLU(Layer):
    """y = max(x, 0)"""

    def forward(self, x):
        self.positive = x > 0
        return np.maximum(x, 0)

    def backward(self, g):
        # slope 1 where x > 0, else 0 (at exactly 0 the derivative does not exist; 0 is used,
        # as PyTorch does)
        return g * self.positive


class GELU(Layer):
    """y = x·Φ(x), Φ the standard normal distribution function (Hendrycks & Gimpel 2016):
    the input scaled by the probability that a standard normal variable lies below it.

    approximate="tanh": Φ(x) ≈ ½·(1 + tanh(√(2/π)·(x + 0.044715·x³))), the cheaper form that
    BERT and GPT-2 used.  Both match torch.nn.GELU(approximate=...) (tests/test_scratch.py).
    """

    C = math.sqrt(2 / math.pi)
    A = 0.044715

    def __init__(self, approximate: Literal["none", "tanh"] = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', not {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        self.x = x
        if self.approximate == "tanh":
            self.t = np.tanh(self.C * (x + self.A * x * x * x))
            return 0.5 * x * (1 + self.t)
        self.cdf = normal_cdf(x)
        return x * self.cdf

    def backward(self, g):
        x = self.x
        if self.approximate == "tanh":
            # y = ½x(1 + t) with t = tanh(u), u = C(x + A·x³).  Product rule, then the chain rule
            # through tanh (tanh' = 1 − t²) and u (u' = C(1 + 3A·x²)):
            #   dy/dx = ½(1 + t) + ½x·(1 − t²)·C(1 + 3A·x²)
            t = self.t
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * self.C * (1 + 3 * self.A * x * x))
        # product rule, with Φ' = φ, the standard normal density:  dy/dx = Φ(x) + x·φ(x)
        return g * (self.cdf + x * normal_pdf(x))

    def __repr__(self):
        return "GELU(tanh)" if self.approximate == "tanh" else "GELU"


class Sequential(Layer):
    """Layers applied one after the other.  Backward runs them in reverse: each layer's
    backward turns the gradient at its output into the gradient at its input, which is the
    gradient at the output of the layer before."""

    def __init__(self, *layers: Layer):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, g):
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    @property
    def params(self):
        """Every parameter, named "<layer index>.<name>" ("0.W", "0.b", "2.W", ...)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.params.values())).dtype

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def load(self, values: dict[str, np.ndarray]) -> None:
        """Copy saved values into the parameters, in place (an optimizer may hold them)."""
        params = self.params
        if set(values) != set(params):
            raise ValueError(f"expected parameters {sorted(params)}, got {sorted(values)}")
        for name, p in params.items():
            if values[name].shape != p.shape:
                raise ValueError(f"{name}: expected shape {p.shape}, got {values[name].shape}")
            p[...] = values[name]

    def __repr__(self):
        return " -> ".join(map(repr, self.layers))
