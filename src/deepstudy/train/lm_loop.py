"""The training loop of a language model, top to bottom: truncated backpropagation through time
over consecutive windows of text, the model's state carried from each window to the next.

It differs from loop.py's `fit` in what a step is, not in the bookkeeping around it: the same
optimizers and schedules, a validation pass after each epoch, the best-on-validation weights
in model.safetensors, the same atomic checkpoint every epoch (resume == uninterrupted run),
early stopping and a time budget.  Losses are mean cross-entropy in nats per character;
bits per character = nats / ln 2.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..io import write_csv
from .checkpoint import restore_training_state, save_training_state, save_weights
# autocast: bf16 runs the LSTM's and the head's matrix products in bfloat16; weights,
# gradients, optimizer state and the loss stay float32, so the updates are not rounded away
from .loop import FitResult, Paths, autocast, format_duration, is_better
from .optim import make_optimizer, make_scheduler

HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "val_bpc", "lr", "seconds", "chars_per_second"]


def detach(state):
    """The LSTM's (h, c) with the same values and no history."""
    return None if state is None else tuple(s.detach() for s in state)


@torch.inference_mode()
def evaluate(model: nn.Module, data, split: str, streams: int) -> dict:
    """Mean loss over every character of a split, read as `streams` streams with the state
    carried, as in training (more streams: faster, but more characters read without context).
    Always in float32, whatever the training precision: these are the numbers reported."""
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in data.windows(split, streams):
        logits, state = model(x, state)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    loss = total / count
    return {"loss": loss, "bpc": loss / math.log(2)}


def fit_language_model(model: nn.Module, data, cfg: dict, paths: Paths, *, resume: bool = False,
                       log: Callable[[str], None] = print, progress: bool = True) -> FitResult:
    train_cfg = cfg["train"]
    epochs, streams, monitor = train_cfg["epochs"], train_cfg["batch_size"], train_cfg["monitor"]
    precision = train_cfg["precision"]
    if monitor != "val_loss":
        raise ConfigError("a language model is selected on its validation loss: set train.monitor=val_loss")
    device = next(model.parameters()).device
    optimizer = make_optimizer(model.parameters(), cfg["optim"])
    steps_per_epoch = data.steps("train", streams)
    scheduler, interval = make_scheduler(optimizer, cfg["schedule"], steps_per_epoch, epochs, monitor)
    # Nothing about the data is random here (the windows come in reading order); the generator
    # is kept so the checkpoint has the same random state as loop.py's.  Dropout draws from
    # torch's global generator, which the checkpoint saves too.
    generator = torch.Generator().manual_seed(train_cfg["seed"])

    history: list[dict] = []
    best_value, best_epoch, bad_epochs, start = None, 0, 0, 1
    if resume:
        state = restore_training_state(paths.checkpoint, model, optimizer, scheduler, generator, device)
        history, best_value, best_epoch = state["history"], state["best_value"], state["best_epoch"]
        bad_epochs, start = state["bad_epochs"], state["epoch"] + 1
        if state["finished"]:
            log(f"run already finished at epoch {state['epoch']}; nothing left to train")
            return FitResult(history, best_epoch, stopped_early=state["epoch"] < epochs)
        log(f"resuming after epoch {state['epoch']} of {epochs}")

    began, stopped_early = time.time(), False
    epoch_times: list[float] = []
    for epoch in range(start, epochs + 1):
        t0 = time.time()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        loss_sum = torch.zeros((), device=device)
        chars = 0
        state = None  # each epoch starts reading its streams from their beginnings
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{epochs}", leave=False, unit="window",
                   disable=not (progress and sys.stderr.isatty()), file=sys.stderr)
        for step, (x, y) in enumerate(data.windows("train", streams)):
            # Truncated BPTT: the state keeps its values, so the model reads on from where the
            # previous window of the same stream ended, but detach() cuts the graph behind it.
            # Without it, backward would run through every earlier window of the epoch, its time
            # and memory growing with the position in the text (and the earlier windows' graphs
            # have been freed by their own backward: it would fail outright).
            with autocast(device, precision):
                logits, state = model(x, detach(state))
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train_cfg["grad_clip"]:
                # an LSTM's gradients over a long window occasionally explode; clipping the
                # global norm keeps one bad window from undoing an epoch
                nn.utils.clip_grad_norm_(model.parameters(), train_cfg["grad_clip"])
            optimizer.step()
            if scheduler is not None and interval == "step":
                scheduler.step()
            loss_sum += loss.detach() * y.numel()
            chars += y.numel()
            bar.update()
            if step % 20 == 0 and not bar.disable:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
        train_seconds = time.time() - t0

        val = evaluate(model, data, "val", train_cfg["eval_batch_size"])
        if scheduler is not None and interval == "epoch":
            scheduler.step(val["loss"])
        seconds = time.time() - t0
        epoch_times.append(seconds)
        history.append({"epoch": epoch, "train_loss": loss_sum.item() / chars, "val_loss": val["loss"],
                        "val_bpc": val["bpc"], "lr": lr, "seconds": seconds,
                        "chars_per_second": round(chars / train_seconds)})

        if is_better(val["loss"], best_value, monitor):
            best_value, best_epoch, bad_epochs = val["loss"], epoch, 0
            save_weights(paths.weights, model)
        else:
            bad_epochs += 1
        if train_cfg["early_stop"] and bad_epochs >= train_cfg["early_stop"]:
            stopped_early = True
        if train_cfg["max_minutes"] and time.time() - began > 60 * train_cfg["max_minutes"]:
            stopped_early = True
        finished = stopped_early or epoch == epochs
        save_training_state(paths.checkpoint, epoch=epoch, finished=finished, model=model, optimizer=optimizer,
                            scheduler=scheduler, generator=generator, history=history, best_value=best_value,
                            best_epoch=best_epoch, bad_epochs=bad_epochs)
        write_csv(paths.history, history, HISTORY_FIELDS)

        left = (epochs - epoch) * sum(epoch_times) / len(epoch_times)
        row = history[-1]
        log(f"epoch {epoch:>3}/{epochs}  train loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f} "
            f"({row['val_bpc']:.3f} bits/char)  lr {lr:.2e}  {seconds:.1f}s, {row['chars_per_second']:,} chars/s"
            + (f"  ~{format_duration(left)} left" if epoch < epochs and not finished else "")
            + ("  *" if best_epoch == epoch else ""))
        if stopped_early:
            log(f"stopping early: no {monitor} improvement for {bad_epochs} epochs"
                if bad_epochs >= (train_cfg["early_stop"] or math.inf) else "stopping: time budget reached")
            break
    return FitResult(history, best_epoch, stopped_early, time.time() - began)
