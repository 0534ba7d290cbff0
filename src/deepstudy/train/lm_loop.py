"""A language model's step and evaluation: truncated backpropagation through time over
consecutive windows of text, the model's state carried from each window to the next.  The
epochs around them (checkpoints, resume, best epoch, early stopping, EMA, processes) are
train/driver.py's, as for every other study.  Losses are mean cross-entropy in nats per
character; bits per character = nats / ln 2.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import RunConfig, TrainConfig
from ..errors import ConfigError
from .distributed import SINGLE, World, shard, sum_over_ranks
from .driver import FitResult, Objective, Paths, run_epochs
# autocast: bf16 runs the LSTM's and the head's matrix products in bfloat16; weights,
# gradients, optimizer state and the loss stay float32, so the updates are not rounded away
from .loop import autocast


def detach(state):
    """The LSTM's (h, c) with the same values and no history."""
    return None if state is None else tuple(s.detach() for s in state)


@torch.inference_mode()
def evaluate(model: nn.Module, data, split: str, streams: int, world: World = SINGLE) -> dict:
    """Mean loss over every character of a split, read as `streams` streams with the state
    carried, as in training (more streams: faster, but more characters read without context).
    Always in float32, whatever the training precision: these are the numbers reported.  Under
    torchrun each process reads its share of the streams and the sums are added up."""
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in data.windows(split, streams):
        if world.distributed:
            part = shard(len(x), world)
            x, y = x[part], y[part]
        logits, state = model(x, state)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    if world.distributed:
        total, count = (v.item() for v in sum_over_ranks(torch.tensor(total), torch.tensor(count), world=world))
    loss = total / count
    return {"loss": loss, "bpc": loss / math.log(2)}


class LanguageModelling(Objective):
    """Consecutive windows of text, `train.batch_size` streams read side by side, the model's
    state carried from each window to the next."""

    unit = "window"
    history_fields = ["epoch", "train_loss", "val_loss", "val_bpc", "lr", "seconds", "chars_per_second"]

    def __init__(self, data, train: TrainConfig, world: World = SINGLE):
        if train.monitor != "val_loss":
            raise ConfigError("a language model is selected on its validation loss: set train.monitor=val_loss")
        self.data, self.train, self.world, self.state = data, train, world, None

    def steps_per_epoch(self, streams: int) -> int:
        return self.data.steps("train", streams)

    def batches(self, streams: int, generator: torch.Generator):
        # Nothing about the data is random here (the windows come in reading order); dropout
        # draws from torch's global generator, which the checkpoint saves too.
        self.state = None  # each epoch starts reading its streams from their beginnings
        for x, y in self.data.windows("train", streams):
            if self.world.distributed:  # each process its own streams, its state theirs
                part = shard(len(x), self.world)
                x, y = x[part], y[part]
            yield x, y

    def loss(self, net: nn.Module, batch, generator: torch.Generator):
        x, y = batch
        # Truncated BPTT: the state keeps its values, so the model reads on from where the
        # previous window of the same stream ended, but detach() cuts the graph behind it.
        # Without it, backward would run through every earlier window of the epoch, its time
        # and memory growing with the position in the text (and the earlier windows' graphs
        # have been freed by their own backward: it would fail outright).
        with autocast(y.device, self.train.precision):
            logits, self.state = net(x, detach(self.state))
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        return loss, {"loss": loss.detach() * y.numel(), "count": y.numel()}

    def train_scores(self, sums: dict, seconds: float) -> dict:
        chars = int(sums["count"])
        return {"train_loss": sums["loss"].item() / chars, "chars_per_second": round(chars / seconds)}

    def validate(self, model: nn.Module) -> dict:
        val = evaluate(model, self.data, "val", self.train.eval_batch_size, self.world)
        return {"val_loss": val["loss"], "val_bpc": val["bpc"]}

    def describe(self, row: dict) -> str:
        return (f"train loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f} ({row['val_bpc']:.3f} bits/char), "
                f"{row['chars_per_second']:,} chars/s")


def fit_language_model(model: nn.Module, data, cfg: RunConfig, paths: Paths, *, resume: bool = False,
                       log: Callable[[str], None] = print, progress: bool = True, world: World = SINGLE) -> FitResult:
    """Train a character model on `data` (train/driver.py); return with the weights of the best
    validation epoch in `model`."""
    objective = LanguageModelling(data, cfg.train, world)
    return run_epochs(model, objective, cfg.train, cfg.optim, cfg.schedule, paths, resume=resume, log=log,
                      progress=progress, world=world)
