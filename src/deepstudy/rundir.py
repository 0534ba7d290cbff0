"""A run directory and what it holds.

    config.json       every resolved setting, the data's description, versions, device
    history.csv       one row per epoch
    metrics.json      {"recipe", "val": {...}, "test": {...}} once the run is finished
    model.safetensors the weights selected on validation
    checkpoint.pt     the full training state of the last epoch (torch.load(weights_only=True))
    summary.txt       the model's layer table, parameter counts and FLOPs
    vocab.json        text runs: the vocabulary built on the training split, in index order
    samples.txt       language models: text sampled at several temperatures (and samples.json)
    plots/            PNGs, each beside the CSV/JSON of the numbers it shows
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

from .errors import RunDirError


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.created = False  # for_new_run made the folder

    config = property(lambda self: self.path / "config.json")
    history = property(lambda self: self.path / "history.csv")
    metrics = property(lambda self: self.path / "metrics.json")
    weights = property(lambda self: self.path / "model.safetensors")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")
    summary = property(lambda self: self.path / "summary.txt")
    vocab = property(lambda self: self.path / "vocab.json")  # text runs: tokens in index order
    samples = property(lambda self: self.path / "samples.txt")  # language models: generated text
    plots = property(lambda self: self.path / "plots")

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def for_new_run(cls, path: str | os.PathLike) -> "RunDir":
        """A fresh run may go into a new or empty folder only: never over someone's results."""
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"{run.path} exists and is not a folder")
        if run.path.is_dir() and any(run.path.iterdir()):
            what = "a run (add --resume to continue it)" if run.config.exists() else "files"
            raise RunDirError(f"{run.path} already holds {what}; choose another --out")
        run.created = not run.path.exists()
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    def remove_partial_writes(self) -> None:
        """Temporary files of writes a kill interrupted (io.atomic_path's `.NAME.*.tmp`): the
        files they were to replace are intact, so these are only clutter."""
        for tmp in [*self.path.glob(".*.tmp"), *self.plots.glob(".*.tmp")]:
            tmp.unlink(missing_ok=True)

    def discard_unfinished(self) -> None:
        """After a new run failed before its first checkpoint: remove what it wrote (there is
        nothing to resume), and the folder too if the run made it.  A run with a checkpoint is
        kept for --resume."""
        if self.checkpoint.exists() or not self.path.is_dir():
            return
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        else:  # the user's own empty folder: leave it as it was, empty
            for child in self.path.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)

    @classmethod
    def for_resume(cls, path: str | os.PathLike) -> "RunDir":
        run = cls(path)
        if not run.config.is_file():
            raise RunDirError(f"{run.path} is not a deepstudy run directory (no config.json): nothing to resume")
        return run  # without checkpoint.pt (stopped in its first epoch) it starts again from epoch 1

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDir":
        """An existing run with trained weights (for eval, predict, ...)."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirError(f"{run.path} is not a folder")
        if not run.config.is_file():
            raise RunDirError(f"{run.path} is not a deepstudy run directory (no config.json)")
        if not run.weights.is_file():
            raise RunDirError(f"{run.path} has no model.safetensors: the run never finished an epoch")
        return run

    @classmethod
    def finished(cls, path: str | os.PathLike) -> "RunDir":
        """A run that reached its end (for compare and report, which read its files, not its weights)."""
        run = cls(path)
        problem = run.unfinished_reason()
        if problem:
            raise RunDirError(f"{run.path} {problem}")
        return run

    def unfinished_reason(self) -> str:
        """Why this folder is not a finished run ('' when it is): metrics.json is written last."""
        if not self.path.exists():
            return "does not exist"
        if not self.path.is_dir():
            return "is not a folder"
        if not self.config.is_file():
            return "is not a deepstudy run directory (no config.json)"
        if not self.metrics.is_file():
            if not self.checkpoint.is_file():
                return "is an unfinished run (no metrics.json)"
            recipe = self.read_config().get("recipe", "NAME")
            return (f"is an unfinished run (no metrics.json); continue it with "
                    f"`deepstudy run {recipe} --out {self.path} --resume`")
        return ""

    def data_root(self, explicit=None) -> Path:
        """Where to find the run's data again: --data-dir, else the root it was trained from (when
        it still exists), else the usual lookup ($DEEPSTUDY_DATA, the cache)."""
        from .data.root import data_root

        if explicit:
            return data_root(explicit)
        recorded = self.read_config().get("data_root")
        if recorded and Path(recorded).is_dir():
            return Path(recorded)
        return data_root(None)

    def read_config(self) -> dict:
        return self._read_json(self.config)

    def read_metrics(self) -> dict:
        return self._read_json(self.metrics)

    def _read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunDirError(f"{path} is missing") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunDirError(f"{path} is damaged ({e})") from None


def versions() -> dict:
    """Installed versions, read from package metadata (importing torchvision just to ask costs a second)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"deepstudy": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("torch", "torchvision", "numpy", "torchmetrics", "safetensors", "matplotlib"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out
