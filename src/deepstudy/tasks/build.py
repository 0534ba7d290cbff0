"""Data and models from a run's settings, for the PyTorch tasks: the registered dataset and
model that cfg.data and cfg.model name, built with their options."""

from __future__ import annotations

import torch

from ..config import RunConfig
from ..errors import RunDirError
from ..io import read_json
from ..rundir import RunDir


def build_data(cfg: RunConfig, data_root, device, log=print, vocab: list[str] | None = None):
    """The dataset cfg names, with its `data.*` options; `vocab`: a finished text run's
    vocabulary (its vocab.json), so the ids are the ones its model learned."""
    from ..data import DataContext, load_dataset
    ctx = DataContext(root=data_root, seed=cfg.train.seed, device=device, log=log, vocab=vocab)
    return load_dataset(cfg.data.name, ctx, **cfg.data.options)


def build_model(cfg: RunConfig, in_shape, num_outputs: int) -> torch.nn.Module:
    """The model cfg names, with its `model.*` options."""
    from ..models import create_model
    return create_model(cfg.model.name, in_shape, num_outputs, **cfg.model.options)


def saved_vocab(run: RunDir) -> list[str] | None:
    """The tokens of a text run's vocab.json (None for runs without one)."""
    if not run.vocab.is_file():
        return None
    try:
        return list(read_json(run.vocab)["tokens"])
    except (ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{run.vocab} is damaged ({type(e).__name__}: {e})") from None


def run_data(task, run: RunDir, saved: dict, data_root, log=print, device="cpu"):
    """A finished run's data as its model saw it: the dataset its settings name, its own
    vocabulary (vocab.json) and, for images, its own normalisation (a pretrained backbone's may
    differ from the statistics the dataset would fit)."""
    from ..data.tensors import Normalize
    from .base import saved_config
    data = build_data(saved_config(task, saved), data_root, device, log, vocab=saved_vocab(run))
    if "mean" in saved["data"]:
        data.normalize = Normalize(tuple(saved["data"]["mean"]), tuple(saved["data"]["std"]))
    return data
