#!/usr/bin/env python
"""Validation accuracy and seconds of one validation pass of finished runs under each test-time
augmentation (none: 1 view, flip: 2, flip_translate: 6; models/tta.py), for choosing model.tta
on validation; the test split is not read.  Any run whose model takes `tta` (fastnet_cifar, the
CIFAR ResNets), including runs trained without it.

    DEEPSTUDY_DATA=/path/to/datasets python tools/tta_views.py runs/cifar-fast-a [runs/cifar-fast-b ...] [--threads 1] [--data-dir DIR]
"""

import argparse
import sys
import time

import torch

from deepstudy.errors import UserError
from deepstudy.models.tta import VIEWS  # none, flip, flip_translate: the views a model can average
from deepstudy.rundir import RunDir
from deepstudy.tasks.base import get_task, saved_config
from deepstudy.tasks.build import run_data
from deepstudy.tasks.classification import evaluate_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="finished run directories of a model with test-time views")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", help="where the run's data is (default: as the run found it)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        for path in args.runs:
            views(path, args.data_dir)
    except UserError as e:  # not a run, a model without views, data gone: one line, as `deepstudy` says it
        print(f"tta_views: error: {e}", file=sys.stderr)
        return 2
    return 0


def views(path: str, data_dir: str | None) -> None:
    """Print one line per test-time augmentation: validation accuracy and the pass's seconds."""
    run = RunDir.open(path)
    task = get_task(run.read_config()["task"])
    model, saved = task.load_model(run, "cpu")
    if not hasattr(model, "tta"):
        raise UserError(f"{path}: its model ({saved['config']['model']['name']}) has no test-time views "
                        f"(models/tta.py: fastnet_cifar and the CIFAR ResNets have)")
    data = run_data(task, run, saved, run.data_root(data_dir), lambda m: None, torch.device("cpu"))
    cfg = saved_config(task, saved)
    for tta in VIEWS:
        model.tta = tta
        began = time.perf_counter()
        accuracy = evaluate_model(model, data, cfg, "val")["accuracy"]
        print(f"{path}  tta={tta:15s} val {100 * accuracy:.2f}%  {time.perf_counter() - began:.1f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
