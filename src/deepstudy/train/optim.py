"""Optimizers and learning-rate schedules from torch.optim, chosen by name.

Every schedule but reduce-on-plateau is stepped once per batch, so warm-up and cosine decay
are smooth even over a handful of epochs; plateau needs a validation score, so it steps once
per epoch.
"""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from ..config import OptimConfig, ScheduleConfig
from ..errors import ConfigError


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    name, lr, wd = cfg.name, cfg.lr, cfg.weight_decay
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.betas), weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    raise ConfigError(f"unknown optimizer {name!r}")


def make_scheduler(optimizer, cfg: ScheduleConfig, steps_per_epoch: int, epochs: int, monitor: str = "val_loss"):
    """Returns (scheduler or None, "step" | "epoch"): how often the loop must call .step()."""
    name = cfg.name
    total = max(1, steps_per_epoch * epochs)
    warm = round(cfg.warmup_epochs * steps_per_epoch)
    if name == "plateau":
        if warm:
            raise ConfigError("schedule.warmup_epochs cannot be combined with schedule.name=plateau")
        mode = "max" if monitor.endswith("accuracy") else "min"
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.factor, patience=cfg.patience), "epoch"
    if name == "onecycle":
        if warm:
            raise ConfigError("schedule.name=onecycle has its own warm-up (schedule.pct_start); drop schedule.warmup_epochs")
        max_lr = [g["lr"] for g in optimizer.param_groups]
        return lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=cfg.pct_start), "step"
    main = {
        "none": None,
        "step": lambda: lr_scheduler.StepLR(optimizer, cfg.step_size * steps_per_epoch, cfg.gamma),
        "multistep": lambda: lr_scheduler.MultiStepLR(optimizer, [m * steps_per_epoch for m in cfg.milestones], cfg.gamma),
        "cosine": lambda: lr_scheduler.CosineAnnealingLR(optimizer, max(1, total - warm), eta_min=cfg.min_lr),
        "linear": lambda: lr_scheduler.LinearLR(optimizer, 1.0, cfg.min_lr / optimizer.defaults["lr"],
                                                total_iters=max(1, total - warm)),
    }[name]
    if not warm:
        return (main() if main else None), "step"
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=cfg.warmup_start, end_factor=1.0, total_iters=warm)
    if main is None:
        return warmup, "step"
    return lr_scheduler.SequentialLR(optimizer, [warmup, main()], milestones=[warm]), "step"
