"""The epoch driver, top to bottom: epochs of steps, a validation pass after each, the
best-on-validation weights kept, a checkpoint every epoch (a resumed run continues exactly
where the uninterrupted one would be), early stopping, a time budget, an average of the
weights (EMA), a progress bar, and, under torchrun, each process on its shard.

Every PyTorch study trains through `run_epochs`.  What differs between kinds of study is the
Objective: how a batch becomes a loss (a classifier's cross-entropy, a language model's
truncated BPTT, a forecaster's MSE) and how a split is evaluated.  The driver never sees the
test set: the task evaluates that once, with the weights chosen here.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ..config import OptimConfig, ScheduleConfig, TrainConfig
from ..errors import ConfigError
from ..io import may_write, write_csv
from .checkpoint import load_weights, restore_training_state, save_training_state, save_weights
from .lookahead import Lookahead
from .distributed import SINGLE, World, agree, barrier, sum_over_ranks, sync_buffers, wrap
from .optim import make_optimizer, make_scheduler
from .tensorboard import EpochLogger, log_dir


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


class Objective:
    """One kind of study's step and evaluation; the driver does everything around them."""

    unit = "batch"  # what the progress bar counts
    history_fields: list[str] = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]

    def steps_per_epoch(self, batch_size: int) -> int:
        raise NotImplementedError

    def before_training(self, model: nn.Module) -> None:
        """Once, before the first epoch of a new (not resumed) run."""

    def start_epoch(self, model: nn.Module, epoch: int) -> None:
        """Before each epoch's first batch (also the first epoch after a resume): for what
        changes with the epoch number (airbench's alternating flips, a layer frozen after N epochs)."""

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterable:
        """This process's part of each training batch, in an order drawn from `generator`."""
        raise NotImplementedError

    def loss(self, net: nn.Module, batch, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        """The batch's mean loss to backpropagate, and sums to add up over the epoch
        ({"loss": loss * count, "count": count, ...}), kept on the device."""
        raise NotImplementedError

    def train_scores(self, sums: dict[str, Any], seconds: float) -> dict:
        """The history row's training entries from the epoch's sums (added up over processes)."""
        raise NotImplementedError

    def validate(self, model: nn.Module) -> dict:
        """The history row's validation entries ("val_loss", ...), the same on every process."""
        raise NotImplementedError

    def has_validation(self) -> bool:
        """False when there is nothing to validate on (data.val_fraction=0): the driver then
        keeps the last epoch's weights instead of selecting one."""
        return True

    def describe(self, row: dict) -> str:
        """The scores part of the epoch's log line."""
        raise NotImplementedError


def is_better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value > best if monitor.endswith("accuracy") else value < best


def run_epochs(model: nn.Module, objective: Objective, train: TrainConfig, optim: OptimConfig,
               schedule: ScheduleConfig, paths: Paths, *, params=None, penalty: Callable[[], torch.Tensor] | None = None,
               resume: bool = False, log: Callable[[str], None] = print, progress: bool = True,
               world: World = SINGLE) -> FitResult:
    """Train `model` with `objective`; return with `model` holding the weights of the best
    validation epoch (also in paths.weights).  `params`: what the optimizer updates (parameter
    groups with their own learning rates, as fine-tuning uses), default every parameter.
    `penalty`: a regulariser added to each step's loss (L2-SP), left out of the reported losses."""
    epochs, bs, monitor = train.epochs, train.batch_size, train.monitor
    device = next(model.parameters()).device
    net = wrap(model, world)  # the model itself in one process; DistributedDataParallel under torchrun
    # With train.ema the average is what gets judged: BatchNorm statistics are averaged along
    # with the weights (use_buffers), so the averaged net's own statistics go with it
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(train.ema), use_buffers=True) if train.ema else None
    judged = model if ema is None else ema.module

    optimizer = make_optimizer(model.parameters() if params is None else params, optim)
    steps_per_epoch = objective.steps_per_epoch(bs)
    lookahead = Lookahead(model, train.lookahead, steps_per_epoch * epochs) if train.lookahead else None
    scheduler, interval = make_scheduler(optimizer, schedule, steps_per_epoch, epochs, monitor)
    # One generator for everything random about the data (order, augmentation): saved in the
    # checkpoint, so a resumed run sees exactly the batches the uninterrupted one would have.
    generator = torch.Generator().manual_seed(train.seed)

    history: list[dict] = []
    best_value, best_epoch, bad_epochs, start = None, 0, 0, 1
    if resume:
        state = restore_training_state(paths.checkpoint, model, optimizer, scheduler, generator, device)
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if lookahead is not None:
            lookahead.load_state_dict(state["lookahead"])
        history, best_value, best_epoch = state["history"], state["best_value"], state["best_epoch"]
        bad_epochs, start = state["bad_epochs"], state["epoch"] + 1
        if state["finished"]:
            log(f"run already finished at epoch {state['epoch']}; nothing left to train")
            load_weights(paths.weights, model, device)
            return FitResult(history, best_epoch, stopped_early=state["epoch"] < epochs)
        log(f"resuming after epoch {state['epoch']} of {epochs}")
    else:
        objective.before_training(model)
    # TensorBoard (train.tensorboard): process 0 alone writes, as it does every other file
    board = EpochLogger(log_dir(paths.history), objective.history_fields, history) \
        if train.tensorboard and world.main and may_write() else None

    began, stopped_early = time.time(), False
    # WHY keep the last epoch without a validation split: the scores of an empty split are all
    # equal, and "best" would freeze the first epoch's weights (a refit on every training image,
    # after the epochs were chosen on a validation split, means the final ones)
    keep_last = not objective.has_validation()
    if keep_last and (interval == "epoch" or train.early_stop):
        raise ConfigError("schedule.name=plateau and train.early_stop watch the validation split, "
                          "and data.val_fraction=0 leaves none: choose another schedule or keep a validation split")
    if keep_last and start == 1:
        log("no validation split: nothing is selected, the last epoch's weights are kept")
    epoch_times: list[float] = []
    for epoch in range(start, epochs + 1):
        t0 = time.time()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        objective.start_epoch(model, epoch)
        sums: dict[str, Any] = {}
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{epochs}", leave=False, unit=objective.unit,
                   disable=not (progress and sys.stderr.isatty()), file=sys.stderr)
        shown_at = 0.0
        for step, batch in enumerate(objective.batches(bs, generator)):
            loss, batch_sums = objective.loss(net, batch, generator)
            optimizer.zero_grad(set_to_none=True)
            (loss if penalty is None else loss + penalty()).backward()
            if train.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
            optimizer.step()
            if lookahead is not None:
                lookahead.step()
            if ema is not None:
                ema.update_parameters(model)
            if scheduler is not None and interval == "step":
                scheduler.step()
            # added up on the device: a .item() per batch would stall a GPU every step
            for key, value in batch_sums.items():
                sums[key] = sums[key] + value if key in sums else value
            bar.update()
            # refreshed twice a second (and at the last batch), not every N batches: a short epoch
            # would otherwise show its first batch's numbers to the end
            if not bar.disable and (time.monotonic() - shown_at >= 0.5 or step + 1 == steps_per_epoch):
                shown_at = time.monotonic()
                shown = {"loss": f"{loss.item():.4f}"}
                if "correct" in sums:
                    shown["acc"] = f"{100 * float(sums['correct']) / sums['count']:.2f}%"
                bar.set_postfix(**shown)
        bar.close()
        if lookahead is not None and epoch == epochs:
            lookahead.finish()
        train_seconds = time.time() - t0

        sums = dict(zip(sums, sum_over_ranks(*(torch.as_tensor(v) for v in sums.values()), world=world)))
        sync_buffers(model, world)  # every process evaluates process 0's BatchNorm statistics
        val = objective.validate(judged)
        score = val[monitor]
        if scheduler is not None and interval == "epoch":
            scheduler.step(score)
        seconds = time.time() - t0
        epoch_times.append(seconds)
        row = {"epoch": epoch, **objective.train_scores(sums, train_seconds), **val, "lr": lr, "seconds": seconds}
        history.append({k: row[k] for k in objective.history_fields})

        if keep_last or is_better(score, best_value, monitor):
            best_value, best_epoch, bad_epochs = score, epoch, 0
            save_weights(paths.weights, judged)
        else:
            bad_epochs += 1
        if board is not None:  # before the checkpoint: an epoch it records is one TensorBoard has
            board.log(history[-1])
        if train.early_stop and bad_epochs >= train.early_stop:
            stopped_early = True
        if train.max_minutes and agree(time.time() - began > 60 * train.max_minutes, world):
            stopped_early = True
        finished = stopped_early or epoch == epochs
        save_training_state(paths.checkpoint, epoch=epoch, finished=finished, model=model, optimizer=optimizer,
                            scheduler=scheduler, generator=generator, history=history, best_value=best_value,
                            best_epoch=best_epoch, bad_epochs=bad_epochs,
                            **({} if ema is None else {"ema": ema.state_dict()}),
                            **({} if lookahead is None else {"lookahead": lookahead.state_dict()}))
        write_csv(paths.history, history, objective.history_fields)

        left = (epochs - epoch) * sum(epoch_times) / len(epoch_times)
        log(f"epoch {epoch:>3}/{epochs}  {objective.describe(history[-1])}  lr {lr:.2e}  {seconds:.1f}s"
            + (f"  ~{format_duration(left)} left" if epoch < epochs and not finished else "")
            + ("  *" if best_epoch == epoch else ""))
        if stopped_early:
            log(f"stopping early: no {monitor} improvement for {bad_epochs} epochs"
                if bad_epochs >= (train.early_stop or math.inf) else "stopping: time budget reached")
            break

    if board is not None:
        board.close()
    # The weights chosen on validation, not the last epoch's, are what the caller goes on with.
    barrier(world)  # process 0 has written them
    load_weights(paths.weights, model, device)
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
