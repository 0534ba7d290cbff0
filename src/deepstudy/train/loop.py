"""The training loop, top to bottom: epochs of mini-batch steps, a validation pass after each,
the best-on-validation weights kept, a checkpoint written every epoch, early stopping.

It never sees the test set: the caller evaluates that once, with the weights this loop
selected on validation.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ..data import ClassificationData
from .. import machine
from ..errors import ConfigError
from ..io import write_csv
from .checkpoint import restore_training_state, save_training_state, save_weights
from .distributed import SINGLE, World, agree, shard, sum_over_ranks, sync_buffers, wrap
from .optim import make_optimizer, make_scheduler

INIT_IMAGES = 5000  # how many training images a model's init_from_data sees (airbench's 5,000)
HISTORY_FIELDS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]


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


@dataclass
class Paths:
    checkpoint: Path  # full training state, every epoch
    weights: Path  # best-on-validation weights (model.safetensors)
    history: Path  # history.csv


@dataclass
class FitResult:
    history: list[dict]
    best_epoch: int
    stopped_early: bool = False
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)


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
            x, y = x[part], y[part]
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


def is_better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value > best if monitor.endswith("accuracy") else value < best


def fit(model: nn.Module, data: ClassificationData, cfg: dict, paths: Paths, *, resume: bool = False,
        log: Callable[[str], None] = print, progress: bool = True,
        criterion: nn.Module | None = None, params=None, penalty: Callable[[], torch.Tensor] | None = None,
        world: World = SINGLE) -> FitResult:
    """Train `model` on `data`.  The default objective is classification (cross-entropy, with
    accuracy tracked); a regression task passes its `criterion` (e.g. nn.MSELoss()) and then
    only the loss is tracked, and `train.monitor` must be val_loss.
    `params`: what the optimizer updates (parameter groups with their own learning rates, as
    fine-tuning uses); default every parameter of the model.  `penalty`: a regulariser added to
    each step's loss (fine-tuning's L2-SP), left out of the reported losses.  Under torchrun (`world`), every
    rank runs this same loop on its share of each batch (see distributed.py) and rank 0 alone
    writes files."""
    train_cfg = cfg["train"]
    epochs, bs, monitor = train_cfg["epochs"], train_cfg["batch_size"], train_cfg["monitor"]
    classify = criterion is None
    if not classify and monitor != "val_loss":
        raise ConfigError(f"train.monitor={monitor} needs class labels; a regression task monitors val_loss")
    if train_cfg["mixup"] < 0 or (train_cfg["mixup"] and not classify):
        raise ConfigError(f"train.mixup={train_cfg['mixup']:g}: mixup needs a classification task and an alpha >= 0")
    if not 0 <= train_cfg["ema"] < 1:
        raise ConfigError(f"train.ema={train_cfg['ema']:g}: the moving average's decay must be in [0, 1)")
    device = next(model.parameters()).device
    # oneDNN's convolutions run about 2x faster on NHWC tensors on a CPU; on CUDA cuDNN likes it too
    channels_last = uses_conv(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net = wrap(model, world)  # the model itself in one process; DistributedDataParallel under torchrun
    # With train.ema the average is what gets judged: BatchNorm statistics are averaged along
    # with the weights (use_buffers), so the averaged net's own statistics go with it
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(train_cfg["ema"]), use_buffers=True)
           if train_cfg["ema"] else None)
    judged = model if ema is None else ema.module

    if classify:
        criterion = nn.CrossEntropyLoss(label_smoothing=train_cfg["label_smoothing"])
    optimizer = make_optimizer(model.parameters() if params is None else params, cfg["optim"])
    steps_per_epoch = math.ceil(data.size("train") / bs)
    scheduler, interval = make_scheduler(optimizer, cfg["schedule"], steps_per_epoch, epochs, monitor)
    # One generator for everything random about the data (order, augmentation): saved in the
    # checkpoint, so a resumed run sees exactly the batches the uninterrupted one would have.
    generator = torch.Generator().manual_seed(train_cfg["seed"])

    history: list[dict] = []
    best_value, best_epoch, bad_epochs, start = None, 0, 0, 1
    if resume:
        state = restore_training_state(paths.checkpoint, model, optimizer, scheduler, generator, device)
        if ema is not None:
            ema.load_state_dict(state["ema"])
        history, best_value, best_epoch = state["history"], state["best_value"], state["best_epoch"]
        bad_epochs, start = state["bad_epochs"], state["epoch"] + 1
        if state["finished"]:
            log(f"run already finished at epoch {state['epoch']}; nothing left to train")
            return FitResult(history, best_epoch, stopped_early=state["epoch"] < epochs)
        log(f"resuming after epoch {state['epoch']} of {epochs}")

    if not resume and hasattr(model, "init_from_data"):
        # a model that sets part of itself from the data before training (fastnet's whitening
        # stem): clean, normalised training images, the same on every rank
        x, _ = next(iter(data.eval_batches("train", INIT_IMAGES, channels_last)))
        model.init_from_data(x)

    began, stopped_early = time.time(), False
    epoch_times: list[float] = []
    for epoch in range(start, epochs + 1):
        t0 = time.time()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{epochs}", leave=False, unit="batch",
                   disable=not (progress and sys.stderr.isatty()), file=sys.stderr)
        for step, (x, y) in enumerate(data.train_batches(bs, generator, channels_last)):
            if world.distributed:
                if len(y) < world.size:  # a last scrap too small to share: every rank skips it alike
                    continue
                part = shard(len(y), world)
                x, y = x[part], y[part]
            if train_cfg["mixup"]:
                x, y2, lam = mix(x, y, train_cfg["mixup"], generator)
            with autocast(device, train_cfg["precision"]):
                logits = net(x)
                loss = criterion(logits, y)
                if train_cfg["mixup"]:  # the blend of the two images' losses, weighted as the images were
                    loss = lam * loss + (1 - lam) * criterion(logits, y2)
                    y = y if lam >= 0.5 else y2  # train accuracy counts the dominant image's class
            optimizer.zero_grad(set_to_none=True)
            (loss if penalty is None else loss + penalty()).backward()
            if train_cfg["grad_clip"]:
                nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            if scheduler is not None and interval == "step":
                scheduler.step()
            # accumulate on the device: a .item() per batch would stall a GPU every step
            loss_sum += loss.detach() * len(y)
            if classify:
                correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            bar.update()
            if step % 50 == 0 and not bar.disable:
                bar.set_postfix(loss=f"{loss.item():.4f}",
                                **({"acc": f"{100 * correct.item() / seen:.2f}%"} if classify else {}))
        bar.close()

        loss_sum, correct = sum_over_ranks(loss_sum, correct, world=world)
        sync_buffers(model, world)  # every rank evaluates rank 0's BatchNorm statistics
        val = evaluate(judged, data, "val", train_cfg["eval_batch_size"], channels_last,
                       None if classify else criterion, world, train_cfg["precision"])
        score = val["accuracy"] if monitor == "val_accuracy" else val["loss"]
        if scheduler is not None and interval == "epoch":
            scheduler.step(score)
        seconds = time.time() - t0
        epoch_times.append(seconds)
        n = data.size("train")
        history.append({"epoch": epoch, "train_loss": loss_sum.item() / n,
                        "train_accuracy": correct.item() / n if classify else None,
                        "val_loss": val["loss"], "val_accuracy": val["accuracy"], "lr": lr, "seconds": seconds})

        if is_better(score, best_value, monitor):
            best_value, best_epoch, bad_epochs = score, epoch, 0
            if world.main:
                save_weights(paths.weights, judged)
        else:
            bad_epochs += 1
        if train_cfg["early_stop"] and bad_epochs >= train_cfg["early_stop"]:
            stopped_early = True
        if train_cfg["max_minutes"] and agree(time.time() - began > 60 * train_cfg["max_minutes"], world):
            stopped_early = True
        finished = stopped_early or epoch == epochs

        if world.main:  # one writer: the other processes hold the same weights
            save_training_state(paths.checkpoint, epoch=epoch, finished=finished, model=model, optimizer=optimizer,
                                scheduler=scheduler, generator=generator, history=history, best_value=best_value,
                                best_epoch=best_epoch, bad_epochs=bad_epochs,
                                **({} if ema is None else {"ema": ema.state_dict()}))
            write_csv(paths.history, history, HISTORY_FIELDS)

        left = (epochs - epoch) * sum(epoch_times) / len(epoch_times)
        row = history[-1]
        scores = (f"train loss {row['train_loss']:.4f} acc {100 * row['train_accuracy']:.2f}%  "
                  f"val loss {row['val_loss']:.4f} acc {100 * row['val_accuracy']:.2f}%" if classify else
                  f"train loss {row['train_loss']:.5f}  val loss {row['val_loss']:.5f}")
        log(f"epoch {epoch:>3}/{epochs}  {scores}  lr {lr:.2e}  "
            f"{seconds:.1f}s" + (f"  ~{format_duration(left)} left" if epoch < epochs and not finished else "")
            + ("  *" if best_epoch == epoch else ""))
        if stopped_early:
            log(f"stopping early: no {monitor} improvement for {bad_epochs} epochs"
                if bad_epochs >= (train_cfg["early_stop"] or math.inf) else "stopping: time budget reached")
            break
    return FitResult(history, best_epoch, stopped_early, time.time() - began)


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"
