"""The skeleton every run follows, written once for every kind of study:

    seed -> task.build (data, model) -> summary.txt, config.json -> task.fit (train/driver.py)
    -> task.score (the weights chosen on validation meet the test set, once) -> task.write_plots
    -> metrics.json (last: a run directory with metrics.json is a finished one) -> the headline

Under torchrun every process runs it; process 0 alone writes (io.writes) and scores.
"""

from __future__ import annotations

import time

import torch

from ..io import write_csv, write_json, write_text, writes
from ..machine import hardware
from ..rundir import versions
from ..train.distributed import SINGLE
from .base import RunContext


def train(ctx: RunContext) -> dict:
    """Run ctx.recipe's task in ctx.run; return metrics.json's contents ({} in processes other than 0)."""
    world = ctx.world or SINGLE
    with writes(world.main):
        return _train(ctx, world)


def _train(ctx: RunContext, world) -> dict:
    started = time.time()
    task, cfg, run, log = ctx.task, ctx.cfg, ctx.run, ctx.log
    torch.manual_seed(cfg.train.seed)  # the model's initial weights
    built = task.build(ctx)
    if world.distributed:
        torch.manual_seed(cfg.train.seed + world.rank)  # each process its own dropout masks

    write_text(run.summary, built.summary)
    if ctx.show_summary:
        log(built.summary)
    record = {"device": str(ctx.device), "processes": world.size, "hardware": hardware(), **built.record}
    if not ctx.resume:
        write_json(run.config, {"recipe": ctx.recipe.name, "tier": ctx.tier, "task": ctx.recipe.task,
                                "config": cfg.as_dict(), **record, "data_root": str(ctx.data_root),
                                "versions": versions(), **ctx.meta})
        for path, content in built.files.items():
            write_json(path, content)
        members = built.data.members() if hasattr(built.data, "members") else []
        if members:  # a generated split can be audited (and rebuilt) from the run directory
            write_csv(run.splits, members)
    log(built.intro + (f"; {world.size} processes" if world.distributed else ""))

    result = task.fit(ctx, built)
    if not world.main:
        return {}  # process 0 scores and reports

    data = built.data
    metrics = {"recipe": ctx.recipe.name, "tier": ctx.tier, "task": ctx.recipe.task,
               "best_epoch": result.best_epoch, "epochs_run": len(result.history),
               "stopped_early": result.stopped_early, "train_seconds": sum(r["seconds"] for r in result.history),
               "data": data.name, "data_source": data.source, "data_note": getattr(data, "note", ""),
               "device": record["device"], "processes": world.size, "hardware": record["hardware"]}
    metrics.update(task.score(ctx, built, result))
    task.write_plots(ctx, built, result, metrics)
    metrics["wall_seconds"] = time.time() - started
    write_json(run.metrics, metrics)  # last: a run directory with metrics.json is a finished one
    log(task.headline(ctx.recipe, metrics))
    return metrics
