"""Task runners: how a recipe of a given kind is trained, evaluated and used for prediction.

Each runner module provides
    train(ctx: RunContext) -> dict          the metrics written to metrics.json
    evaluate(run: RunDir, split, data_root, device, log) -> dict
    predict(run: RunDir, inputs: list[str], device) -> list[dict]
and is looked up by the recipe's `task`: task "classification" is tasks/classification.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

import torch

from ..errors import ConfigError
from ..rundir import RunDir
from ..train.distributed import SINGLE, World

def runner(task: str) -> ModuleType:
    try:
        return importlib.import_module(f"{__name__}.{task}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{task}":
            raise
        raise ConfigError(f"no runner for task {task!r}") from None


@dataclass
class RunContext:
    recipe: "object"  # recipes.Recipe
    tier: str
    cfg: dict
    run: RunDir
    data_root: Path
    device: torch.device
    resume: bool = False
    log: Callable[[str], None] = print
    progress: bool = True
    show_summary: bool = False
    meta: dict = field(default_factory=dict)  # command line, start time: copied into config.json
    world: World = SINGLE  # under torchrun: this process's rank among how many


def build_data(cfg: dict, data_root, device, log=print, vocab: list[str] | None = None):
    """The dataset a resolved config names, with its `data.*` options; `vocab`: a finished text
    run's vocabulary (its vocab.json), so the ids are the ones its model learned."""
    from ..data import DataContext, load_dataset
    options = {k: v for k, v in cfg["data"].items() if k != "name"}
    ctx = DataContext(root=data_root, seed=cfg["train"]["seed"], device=device, log=log, vocab=vocab)
    return load_dataset(cfg["data"]["name"], ctx, **options)


def build_model(cfg: dict, in_shape, num_outputs: int) -> torch.nn.Module:
    """The model a resolved config names, with its `model.*` options."""
    from ..models import create_model
    options = {k: v for k, v in cfg["model"].items() if k != "name"}
    return create_model(cfg["model"]["name"], in_shape, num_outputs, **options)
