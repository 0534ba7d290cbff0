"""Gradient checking: every backward pass against central finite differences.

A derivative is a limit of differences, so it can be estimated without knowing the formula:

    dL/dθ ≈ (L(θ + h) − L(θ − h)) / 2h

The error of this central difference shrinks like h², and float64's 16 digits leave room for a
small h (1e-6): estimate and analytic gradient then agree to about 1e-9 relative.  A backward
pass with a mistake in it (a missing factor, a wrong transpose, a forgotten term) is off by far
more, typically 1e-3 to 1.

For a layer, the check needs a scalar: L = Σ g ⊙ layer(x), with g a fixed random array.  Its
gradient with respect to the layer's output is exactly g, so backward(g) must return dL/dx and
fill dL/dW, dL/db.  The relative error reported per gradient is

    |a − n| / (|a| + |n|)     (Euclidean norms; a analytic, n numerical)

It costs two forward passes per number checked, so checks use small arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .layers import GELU, Layer, Linear, ReLU, Sequential, Sigmoid, Tanh
from .losses import MSE, SoftmaxCrossEntropy

TOLERANCE = 1e-6  # float64, h = 1e-6: correct code gives ~1e-9, a wrong backward 1e-3 and more
STEP = 1e-6


@dataclass
class Check:
    name: str  # what was checked, e.g. "Linear(5->3)"
    gradient: str  # "input" or a parameter name
    error: float  # relative error between analytic and numerical gradient

    @property
    def ok(self) -> bool:
        return self.error < TOLERANCE


def numerical_gradient(f: Callable[[], float], array: np.ndarray, h: float = STEP) -> np.ndarray:
    """dF/darray by central differences, changing one element of `array` at a time, in place,
    and putting it back."""
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)  # views: writing flat[i] changes array
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        flat_grad[i] = (up - down) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> float:
    scale = np.linalg.norm(analytic) + np.linalg.norm(numerical)
    return float(np.linalg.norm(analytic - numerical) / scale) if scale > 0 else 0.0


def check_layer(layer: Layer, x: np.ndarray, seed: int = 0, name: str | None = None) -> list[Check]:
    """Compare layer.backward with finite differences for the input and every parameter."""
    if x.dtype != np.float64 or any(p.dtype != np.float64 for p in layer.params.values()):
        raise ValueError("gradient checks need float64 inputs and parameters: float32 has too few digits")
    name = name or repr(layer)
    g = np.random.default_rng(seed).standard_normal(layer.forward(x).shape)

    def loss() -> float:
        return float(np.sum(g * layer.forward(x)))

    layer.forward(x)
    analytic = {"input": layer.backward(g), **{k: v.copy() for k, v in layer.grads.items()}}
    targets = {"input": x, **layer.params}
    return [Check(name, k, relative_error(analytic[k], numerical_gradient(loss, targets[k]))) for k in analytic]


def check_loss(loss_fn, outputs: np.ndarray, targets: np.ndarray, name: str | None = None) -> list[Check]:
    """Compare loss_fn.backward with finite differences of loss_fn.forward."""
    loss_fn.forward(outputs, targets)
    analytic = loss_fn.backward()
    numerical = numerical_gradient(lambda: loss_fn.forward(outputs, targets), outputs)
    return [Check(name or type(loss_fn).__name__, "input", relative_error(analytic, numerical))]


def check_network(model: Sequential, loss_fn, x: np.ndarray, targets: np.ndarray, name: str) -> list[Check]:
    """The whole chain: loss(model(x)) against every parameter of every layer."""
    def loss() -> float:
        return loss_fn.forward(model.forward(x), targets)

    loss()
    model.backward(loss_fn.backward())
    grads = {k: v.copy() for k, v in model.grads.items()}
    return [Check(name, k, relative_error(grads[k], numerical_gradient(loss, p))) for k, p in model.params.items()]


def check_all(seed: int = 0) -> list[Check]:
    """Every layer and loss of deepstudy.scratch, and a small network built from them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 5))
    # ReLU has a kink at 0: central differences straddling it are meaningless, so keep inputs
    # at least 0.1 away (the chance of landing within h of it is tiny anyway)
    away = np.where(np.abs(x) < 0.1, x + np.copysign(0.2, x), x)
    checks = []
    checks += check_layer(Linear(5, 3, rng, np.float64), x, seed)
    checks += check_layer(Sigmoid(), x * 3, seed)
    checks += check_layer(Tanh(), x * 2, seed)
    checks += check_layer(ReLU(), away, seed)
    checks += check_layer(GELU(), x * 2, seed)
    checks += check_layer(GELU("tanh"), x * 2, seed)
    checks += check_loss(SoftmaxCrossEntropy(), rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6))
    checks += check_loss(MSE(), rng.standard_normal((6, 2)), rng.standard_normal((6, 2)))
    net = Sequential(Linear(5, 4, rng, np.float64, "xavier"), Tanh(), Linear(4, 4, rng, np.float64, "he"), GELU(),
                     Linear(4, 3, rng, np.float64))
    checks += check_network(net, SoftmaxCrossEntropy(), x, rng.integers(0, 3, 4), "MLP 5-4-4-3 (tanh, GELU) + softmax CE")
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'checked':<{width}}  {'gradient':<8}  {'rel. error':>10}",
             f"{'-' * width}  {'-' * 8}  {'-' * 10}"]
    previous = None
    for c in checks:
        shown = c.name if c.name != previous else ""
        previous = c.name
        lines.append(f"{shown:<{width}}  {c.gradient:<8}  {c.error:>10.2e}  {'ok' if c.ok else 'FAILED'}")
    return "\n".join(lines)
