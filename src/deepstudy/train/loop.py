"""Supervised training on batches of inputs and targets (image and text classifiers, the
forecasters): the step and the evaluation that train/driver.py's epochs run, and what the
tasks need around them (the device, the precision, logits for a whole split).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import machine
from ..config import RunConfig, TrainConfig
from ..data import ClassificationData
from ..errors import ConfigError
from ..models.tta import single_view
from .distributed import SINGLE, World, shard, sum_over_ranks, take
from .driver import FitResult, Objective, Paths, run_epochs  # noqa: F401  (FitResult, Paths: what fit returns and takes)

INIT_IMAGES = 5000  # how many training images a model's init_from_data sees (airbench's 5,000)
HISTORY_FIELDS = Objective.history_fields


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def uses_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def native_bf16(device: torch.device) -> bool:
    """Does `device` compute in bfloat16 natively?  Without it (an AVX2-only CPU, an AVX-512 one
    without BF16) oneDNN emulates bf16 and a training step runs several times slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # the CPU's own flags decide (machine.cpu_native_bf16 says why not oneDNN's check
        # alone); oneDNN must also have bf16 kernels in this build of torch
        try:
            built = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            built = False
        return built and machine.cpu_native_bf16()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """train.precision=auto becomes bf16 where the device has native bf16, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast(device: torch.device, precision: str = "fp32"):
    """bf16: convolutions and matrix products in bfloat16, losses, reductions and BatchNorm
    statistics kept in fp32.  On CPUs without native bf16 it is emulated and slower than fp32
    (`benchmarks/bf16_steps.py` measures both on this machine)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.inference_mode()
def predict_logits(model: nn.Module, data: ClassificationData, split: str, batch_size: int,
                   channels_last: bool = False, precision: str = "fp32") -> torch.Tensor:
    """Logits for every example of a split, in order (eval mode: no dropout, BN running stats)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with autocast(device, precision):
        out = [model(x).float() for x, _ in data.eval_batches(split, batch_size, channels_last)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


@torch.inference_mode()
def evaluate(model: nn.Module, data: ClassificationData, split: str, batch_size: int,
             channels_last: bool = False, criterion: nn.Module | None = None, world: World = SINGLE,
             precision: str = "fp32") -> dict:
    """Mean loss and accuracy of a split; with a regression `criterion` (MSE, ...) the loss alone.
    Under torchrun each rank takes its share of every batch and the sums are added up over
    ranks, so every rank gets the same numbers."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for x, y in data.eval_batches(split, batch_size, channels_last):
        if world.distributed:
            part = shard(len(y), world)
            x, y = take(x, part), y[part]
        with autocast(device, precision):  # the loss below in fp32 whatever the precision
            out = model(x).float()
        if criterion is None:
            loss_sum += F.cross_entropy(out, y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
        else:  # a mean-reducing criterion: weight each batch by its size
            loss_sum += criterion(out, y) * len(y)
    model.train(was_training)
    loss_sum, correct = sum_over_ranks(loss_sum, correct, world=world)
    n = max(1, data.size(split))
    return {"loss": loss_sum.item() / n, "accuracy": correct.item() / n if criterion is None else None}


def mix(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator):
    """Mixup: the batch blended with a shuffled copy of itself.  Returns the blended inputs, the
    copy's labels and the blend weight lam ~ Beta(alpha, alpha), drawn through `generator` (via
    a NumPy generator seeded from it: torch's Beta takes none) so a resumed run mixes alike."""
    lam = float(np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator))).beta(alpha, alpha))
    perm = torch.randperm(len(y), generator=generator).to(y.device)
    return lam * x + (1 - lam) * x[perm], y[perm], lam


class Supervised(Objective):
    """Inputs and targets in batches: cross-entropy over classes (accuracy tracked), or a
    regression `criterion` (nn.MSELoss(), ...) and then the loss alone."""

    def __init__(self, model: nn.Module, data: ClassificationData, train: TrainConfig,
                 criterion: nn.Module | None = None, world: World = SINGLE):
        self.classify = criterion is None
        if not self.classify and train.monitor != "val_loss":
            raise ConfigError(f"train.monitor={train.monitor} needs class labels; a regression task monitors val_loss")
        if train.mixup and not self.classify:
            raise ConfigError(f"train.mixup={train.mixup:g}: mixup needs a classification task and an alpha >= 0")
        self.data, self.train, self.world = data, train, world
        self.device = next(model.parameters()).device
        self.criterion = nn.CrossEntropyLoss(label_smoothing=train.label_smoothing) if self.classify else criterion
        # oneDNN's convolutions run about 2x faster on NHWC tensors on a CPU; on CUDA cuDNN likes it too
        self.channels_last = uses_conv(model)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.data.size("train") / batch_size)

    def before_training(self, model: nn.Module) -> None:
        self._check_low_res(model)
        if hasattr(model, "init_from_data"):
            # a model that sets part of itself from the data before training (fastnet's whitening
            # stem): clean, normalised training images, the same on every process
            x, _ = next(iter(self.data.eval_batches("train", INIT_IMAGES, self.channels_last)))
            model.init_from_data(x)

    def _check_low_res(self, model: nn.Module) -> None:
        """Progressive resizing (data.low_res) needs a model that takes smaller images (one that
        ends in global pooling); one that flattens a fixed-size map into a linear layer would
        fail at its first step with a shape error.  One forward pass of two small blank images,
        in eval mode (no statistics move), says so before any training."""
        size = getattr(self.data, "low_res", 0)
        if not size:
            return
        c, h, w = self.data.in_shape
        probe = torch.zeros(2, c, size, size, device=self.device)
        if self.channels_last:
            probe = probe.to(memory_format=torch.channels_last)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(probe)
        except RuntimeError:
            raise ConfigError(f"data.low_res={size}: this model cannot take {size}x{size} images (it is built for "
                              f"{h}x{w}; progressive resizing needs a net that ends in global pooling, such as "
                              f"the ResNets)") from None
        finally:
            model.train(was_training)

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        # the model and the data may change with the epoch (fastnet's whitening bias frozen after
        # N epochs, CIFAR's alternating flips): both are told it, resumed runs included
        for part in (model, self.data):
            if hasattr(part, "start_epoch"):
                part.start_epoch(epoch)

    def batches(self, batch_size: int, generator: torch.Generator):
        world = self.world
        for x, y in self.data.train_batches(batch_size, generator, self.channels_last):
            if world.distributed:
                if len(y) < world.size:  # a last scrap too small to share: every process skips it alike
                    continue
                part = shard(len(y), world)
                x, y = take(x, part), y[part]
            yield x, y

    def loss(self, net: nn.Module, batch, generator: torch.Generator):
        x, y = batch
        y2 = lam = None
        if self.train.mixup:
            x, y2, lam = mix(x, y, self.train.mixup, generator)
        with autocast(self.device, self.train.precision):
            logits = net(x)
            # An ensemble (models/ensemble.py) in training returns its members' logits stacked,
            # k x N x classes: one loss over all k x N rows is the mean of the members' own
            # losses, and k times it gives each member the gradient it would have alone
            k = len(logits) if self.classify and logits.dim() == 3 else 1
            if k > 1:
                voted = logits.float().softmax(-1).mean(0)  # the ensemble's answer, for train accuracy
                logits, y, y2 = logits.flatten(0, 1), y.repeat(k), None if y2 is None else y2.repeat(k)
            loss = self._loss(logits, y, y2, lam)
        if k > 1:
            logits, y, y2 = voted, y[:len(voted)], None if y2 is None else y2[:len(voted)]
        if y2 is not None and lam < 0.5:
            y = y2  # train accuracy counts the dominant image's class
        sums = {"loss": loss.detach() * len(y), "count": len(y)}
        if self.classify:
            sums["correct"] = (logits.argmax(1) == y).sum()
        return k * loss, sums

    def _loss(self, out: torch.Tensor, y: torch.Tensor, y2: torch.Tensor | None, lam: float | None) -> torch.Tensor:
        loss = self.criterion(out, y)
        if y2 is not None:  # mixup: the blend of the two images' losses, weighted as the images were
            loss = lam * loss + (1 - lam) * self.criterion(out, y2)
        return loss

    def train_scores(self, sums: dict, seconds: float) -> dict:
        n = self.data.size("train")
        return {"train_loss": sums["loss"].item() / n,
                "train_accuracy": sums["correct"].item() / n if self.classify else None}

    def validate(self, model: nn.Module) -> dict:
        if not self.has_validation():  # blank in history.csv and null in metrics.json, not a zero
            return {"val_loss": None, "val_accuracy": None}
        t = self.train
        with nullcontext() if t.tta_every_epoch else single_view(model):
            val = evaluate(model, self.data, "val", t.eval_batch_size, self.channels_last,
                           None if self.classify else self.criterion, self.world, t.precision)
        return {"val_loss": val["loss"], "val_accuracy": val["accuracy"]}

    def has_validation(self) -> bool:
        return self.data.size("val") > 0

    def describe(self, row: dict) -> str:
        if not self.has_validation():
            return (f"train loss {row['train_loss']:.4f}"
                    + (f" acc {100 * row['train_accuracy']:.2f}%" if self.classify else ""))
        if self.classify:
            return (f"train loss {row['train_loss']:.4f} acc {100 * row['train_accuracy']:.2f}%  "
                    f"val loss {row['val_loss']:.4f} acc {100 * row['val_accuracy']:.2f}%")
        return f"train loss {row['train_loss']:.5f}  val loss {row['val_loss']:.5f}"


def fit(model: nn.Module, data: ClassificationData, cfg: RunConfig, paths: Paths, *, resume: bool = False,
        log: Callable[[str], None] = print, progress: bool = True,
        criterion: nn.Module | None = None, params=None, penalty: Callable[[], torch.Tensor] | None = None,
        world: World = SINGLE) -> FitResult:
    """Train `model` on `data` with cfg's train, optim and schedule settings (train/driver.py);
    return with the weights of the best validation epoch in `model`.  The default objective is
    classification; a regression task passes its `criterion` (e.g. nn.MSELoss())."""
    objective = Supervised(model, data, cfg.train, criterion, world)
    return run_epochs(model, objective, cfg.train, cfg.optim, cfg.schedule, paths, params=params, penalty=penalty,
                      resume=resume, log=log, progress=progress, world=world)
