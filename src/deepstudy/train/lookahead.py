"""Lookahead as airbench does it (Jordan 2024, after Zhang et al. 2019, "Lookahead Optimizer: k
steps forward, 1 step back"): every `every` optimizer steps, a slow copy of the weights moves part
of the way towards the fast ones, and the fast weights are reset to the slow copy.

    slow <- slow + (1 - decay) * (fast - slow);   fast <- slow
    decay = 0.95**every * (step / total)**3

Why the ramp: early on decay is ~0 (the fast weights are kept as they are: plain SGD); towards the
end of the run it nears 0.95**every, an average over the last ~100 steps, which removes much
of the noise of SGD at the learning rates a short run needs.  Unlike train.ema, which averages for
evaluation only, lookahead feeds the average back into training.

Every floating-point entry of the state dict moves (weights and BatchNorm's running statistics,
as in airbench); integer counters are left alone.  At the end of the run the fast weights are set
to the slow ones (`finish`).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Lookahead:
    def __init__(self, model: nn.Module, every: int, total_steps: int):
        self.every, self.total = every, max(1, total_steps)
        self.step_count = 0
        # the state dict's tensors share storage with the live weights and buffers: kept once,
        # not rebuilt at every pull (loading a checkpoint copies into them in place)
        self.fast = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self.slow = {k: v.detach().clone() for k, v in self.fast.items()}

    @torch.no_grad()
    def step(self) -> None:
        """After each optimizer step."""
        self.step_count += 1
        if self.step_count % self.every == 0:
            self._pull(0.95 ** self.every * (min(self.step_count, self.total) / self.total) ** 3)

    @torch.no_grad()
    def finish(self) -> None:
        """After the run's last step: the fast weights become the slow ones."""
        self._pull(1.0)

    def _pull(self, decay: float) -> None:
        for name, slow in self.slow.items():
            slow.lerp_(self.fast[name], 1 - decay)
            self.fast[name].copy_(slow)

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "slow": self.slow}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step_count"]
        for name, value in state["slow"].items():
            self.slow[name].copy_(value)
