"""Optimizers: how parameters move, given their gradients.

    step(params, grads)   params and grads are {name: array} with the same names; every
                          parameter array is changed in place, so the layers that own them
                          compute with the new values.

Both follow torch.optim's update rules exactly (the tests run them side by side), including
`weight_decay`, which, as there, adds weight_decay·p to the gradient (L2 regularisation).
`lr` is a plain attribute: a schedule changes it between steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError


class SGD:
    """Stochastic gradient descent, optionally with momentum:

        v ← momentum·v + g        (v starts as the first g)
        p ← p − lr·v              (nesterov: p ← p − lr·(g + momentum·v))

    Momentum averages the gradients of recent steps: directions that agree add up, noise
    cancels, so it can take larger steps along the valley floor.
    """

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        if nesterov and not momentum:
            raise ConfigError("nesterov momentum needs optim.momentum > 0")
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                v = self.velocity.get(name)
                if v is None:
                    v = self.velocity[name] = g.copy()
                else:
                    v *= self.momentum
                    v += g
                g = g + self.momentum * v if self.nesterov else v
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015): a per-parameter step size from running averages of the gradient
    (m, the direction) and of its square (v, the scale):

        m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1^t)             v̂ = v / (1 − β2^t)       (m and v start at 0: undo that bias)
        p ← p − lr·m̂ / (√v̂ + eps)

    Dividing by √v̂ makes the step about lr in size whatever the gradient's scale.
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.lr, self.eps, self.weight_decay = lr, eps, weight_decay
        self.beta1, self.beta2 = betas
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        correction1 = 1 - self.beta1 ** self.t
        correction2 = 1 - self.beta2 ** self.t
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if name not in self.m:
                self.m[name], self.v[name] = np.zeros_like(p), np.zeros_like(p)
            m, v = self.m[name], self.v[name]
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


def cosine_lr(base: float, final: float, step: int, total: int) -> float:
    """The learning rate at `step` (0-based) of `total` for cosine decay from `base` to `final`
    (torch's CosineAnnealingLR, stepped once per batch)."""
    return final + (base - final) * (1 + math.cos(math.pi * step / total)) / 2


def make_optimizer(cfg: dict):
    """An optimizer from a run's `optim` section (deepstudy.config.OptimConfig)."""
    name = cfg.name
    if name == "sgd":
        return SGD(cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    if name == "adam":
        betas = tuple(cfg.betas)
        if len(betas) != 2:
            raise ConfigError(f"optim.betas needs two numbers, got {betas}")
        return Adam(cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    raise ConfigError(f"the NumPy optimizers are sgd and adam; optim.name={name} is only available to the PyTorch recipes")
