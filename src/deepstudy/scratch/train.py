"""The NumPy training loop, top to bottom: shuffled mini-batches; forward, loss, backward and an
optimizer step for each; a validation pass after each epoch; the weights with the best
validation score kept (and written to `weights_path`); early stopping and a time budget.

It never sees the test set: the caller evaluates that once, with the weights chosen here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from safetensors.numpy import load_file, save_file

from ..io import atomic_path, write_csv
from .data import ArrayData
from .layers import Sequential
from .losses import MSE, SoftmaxCrossEntropy
from .optim import cosine_lr

CLASSIFICATION_FIELDS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
REGRESSION_FIELDS = ["epoch", "train_loss", "val_loss", "val_rmse", "lr", "seconds"]


@dataclass
class FitResult:
    history: list[dict]  # one row per epoch
    best_epoch: int
    best_params: dict[str, np.ndarray]  # the weights of the best epoch on validation
    stopped_early: bool
    seconds: float


def loss_for(data: ArrayData):
    """Softmax cross-entropy for classes, mean squared error for a number."""
    return SoftmaxCrossEntropy() if data.is_classification else MSE()


def outputs(model: Sequential, data: ArrayData, split: str, batch_size: int = 1000) -> np.ndarray:
    """The model's outputs (logits, or predicted numbers) for every example of a split, in order."""
    parts = [model.forward(x) for x, _ in data.batches(split, batch_size, model.dtype)]
    return np.concatenate(parts) if parts else np.zeros((0, data.outputs), model.dtype)


def scores(out: np.ndarray, targets: np.ndarray, classification: bool) -> dict:
    """loss and accuracy (classes), or loss (MSE), RMSE and MAE (numbers), over a whole split."""
    if classification:
        return {"loss": SoftmaxCrossEntropy().forward(out, targets),
                "accuracy": float(np.mean(out.argmax(axis=1) == targets))}
    err = out[:, 0].astype(np.float64) - targets
    mse = float(np.mean(err * err))
    return {"loss": mse, "rmse": math.sqrt(mse), "mae": float(np.mean(np.abs(err)))}


def evaluate(model: Sequential, data: ArrayData, split: str, batch_size: int = 1000) -> dict:
    return scores(outputs(model, data, split, batch_size), getattr(data, split).y, data.is_classification)


def save_params(path: Path, params: dict[str, np.ndarray]) -> None:
    """Weights as safetensors (the format of the PyTorch runs), written atomically."""
    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in params.items()}, str(tmp))


def load_params(path: Path) -> dict[str, np.ndarray]:
    return load_file(str(path))


def _better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value > best if monitor.endswith("accuracy") else value < best


def fit(model: Sequential, loss_fn, optimizer, data: ArrayData, *, epochs: int, batch_size: int,
        rng: np.random.Generator, eval_batch_size: int = 1000, schedule: str = "none", min_lr: float = 0.0,
        monitor: str = "val_accuracy", early_stop: int = 0, max_minutes: float = 0.0,
        weights_path: Path | None = None, history_path: Path | None = None,
        log: Callable[[str], None] = print, log_every: int = 1,
        describe: Callable[[], str] | None = None) -> FitResult:
    """Train `model` in place.  `rng` decides the order of the training examples; `schedule` is
    "none" (constant optim lr) or "cosine" (decayed to `min_lr` over all steps, per batch);
    `describe` adds a note to each logged epoch (e.g. the fitted line)."""
    classification = data.is_classification
    steps_per_epoch = math.ceil(data.size("train") / batch_size)
    total_steps, base_lr, step = epochs * steps_per_epoch, optimizer.lr, 0
    history: list[dict] = []
    best_value, best_epoch, best_params, bad_epochs = None, 0, {}, 0
    began, stopped_early = time.perf_counter(), False

    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        lr = optimizer.lr if schedule == "none" else cosine_lr(base_lr, min_lr, step, total_steps)
        loss_sum, correct = 0.0, 0
        for x, y in data.batches("train", batch_size, model.dtype, rng):
            if schedule == "cosine":
                optimizer.lr = cosine_lr(base_lr, min_lr, step, total_steps)
            out = model.forward(x)
            loss = loss_fn.forward(out, y)
            model.backward(loss_fn.backward())
            optimizer.step(model.params, model.grads)
            step += 1
            loss_sum += loss * len(y)
            if classification:
                correct += int(np.count_nonzero(out.argmax(axis=1) == y))

        val = evaluate(model, data, "val", eval_batch_size)
        n = data.size("train")
        row = {"epoch": epoch, "train_loss": loss_sum / n}
        if classification:
            row |= {"train_accuracy": correct / n, "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
        else:
            row |= {"val_loss": val["loss"], "val_rmse": val["rmse"]}
        row |= {"lr": lr, "seconds": time.perf_counter() - t0}
        history.append(row)

        score = val["accuracy"] if monitor == "val_accuracy" else val["loss"]
        if _better(score, best_value, monitor):
            best_value, best_epoch, bad_epochs = score, epoch, 0
            best_params = {k: v.copy() for k, v in model.params.items()}
            if weights_path is not None:
                save_params(weights_path, best_params)
        else:
            bad_epochs += 1
        if early_stop and bad_epochs >= early_stop:
            stopped_early = True
        if max_minutes and time.perf_counter() - began > 60 * max_minutes:
            stopped_early = True
        if history_path is not None:
            write_csv(history_path, history, CLASSIFICATION_FIELDS if classification else REGRESSION_FIELDS)

        if epoch % log_every == 0 or epoch in (1, epochs) or stopped_early:
            if classification:
                text = (f"train loss {row['train_loss']:.4f} acc {100 * row['train_accuracy']:.2f}%  "
                        f"val loss {row['val_loss']:.4f} acc {100 * row['val_accuracy']:.2f}%")
            else:
                text = f"train loss {row['train_loss']:.4g}  val loss {row['val_loss']:.4g} (rmse {row['val_rmse']:.4g})"
            log(f"epoch {epoch:>3}/{epochs}  {text}  lr {lr:.2e}  {row['seconds']:.2f}s"
                + (f"  {describe()}" if describe else "") + ("  *" if best_epoch == epoch else ""))
        if stopped_early:
            log(f"stopping early: no {monitor} improvement for {bad_epochs} epochs"
                if early_stop and bad_epochs >= early_stop else "stopping: time budget reached")
            break
    return FitResult(history, best_epoch, best_params, stopped_early, time.perf_counter() - began)
