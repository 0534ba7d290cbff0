"""tools/transfer_curve.py: the sweep over training-set sizes, its table and plot taken from the
runs, a second invocation that trains nothing, and the rule that gives small sets their steps."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest

from deepstudy.recipes import get_recipe
from deepstudy.tasks import resolve
from deepstudy.tasks.classification import Classification

from conftest import make_cifar_jpeg

spec = importlib.util.spec_from_file_location("transfer_curve", Path(__file__).resolve().parents[1] / "tools" / "transfer_curve.py")
curve = importlib.util.module_from_spec(spec)
spec.loader.exec_module(curve)


def test_sweep_writes_the_runs_numbers_and_resumes_without_training(tmp_path, capsys, monkeypatch):
    # each run's own plots are tested elsewhere and take most of a smoke run's time
    monkeypatch.setattr(Classification, "write_plots", lambda *args, **kwargs: None)
    make_cifar_jpeg(tmp_path / "data")  # 120 training images per class
    out = tmp_path / "curve"
    argv = ["--out", str(out), "--tier", "smoke", "--sizes", "6,10", "--seeds", "0", "--threads", "1",
            "--data-dir", str(tmp_path / "data"),
            # a narrow fastnet, a validation split the hand-made data holds, and 10 per class as
            # the size whose steps the smaller sets get (the recipe's 1,000 would take 32 epochs)
            "--set", "data.val_per_class=10", "model.widths=16,32,32", "data.train_per_class=10"]
    assert curve.main(argv) == 0
    with open(out / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["mode"], int(r["per_class"])) for r in rows) == sorted(
        (m, n) for m in curve.MODES for n in (6, 10))
    for r in rows:
        run = out / f"{r['mode']}-n{r['per_class']}-s0"
        m = json.loads((run / "metrics.json").read_text())
        c = json.loads((run / "config.json").read_text())
        assert float(r["test_accuracy"]) == m["test"]["accuracy"] and float(r["val_accuracy"]) == m["val"]["accuracy"]
        # the size reached the data: the smoke tier's data.limit did not replace it
        assert c["data"]["sizes"]["train"] == 2 * int(r["per_class"]) == int(r["train_images"])
        assert c["data"]["sizes"]["val"] == 20
    md = (out / "curve.md").read_text()
    assert all(mode in md for mode in curve.MODES) and "standard deviation" in md and "finetune − scratch" in md
    assert (out / "curve.png").stat().st_size > 10_000

    finished = {p: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")}
    capsys.readouterr()
    assert curve.main(argv) == 0
    log = capsys.readouterr().out
    assert log.count("finished before: kept") == 6 and " training catsdogs" not in log
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")} == finished


@pytest.mark.parametrize("mode", curve.MODES)
def test_small_sets_train_for_at_least_the_recipes_steps(mode):
    r = get_recipe(f"catsdogs-fast-{mode}")
    cfg = resolve(r, r.default_tier)
    per_epoch = math.ceil(2 * cfg.data.options["train_per_class"] / cfg.train.batch_size)
    for n in (25, 50, 100, 250, 1000):
        s = curve.schedule(cfg, n)
        steps = math.ceil(2 * n / s["train.batch_size"])
        assert s["train.epochs"] * steps >= cfg.train.epochs * per_epoch
        assert steps >= curve.MIN_STEPS_PER_EPOCH or s["train.batch_size"] == curve.MIN_BATCH
        if mode == "finetune":
            assert s["transfer.finetune_epochs"] * steps >= cfg.transfer.finetune_epochs * per_epoch
        else:
            assert "transfer.finetune_epochs" not in s
    # at the recipe's own size it runs as the recipe says
    assert curve.schedule(cfg, 1000) == {"train.batch_size": cfg.train.batch_size, "train.epochs": cfg.train.epochs,
                                         **({"transfer.finetune_epochs": cfg.transfer.finetune_epochs}
                                            if mode == "finetune" else {})}
    # 25 per class: 240 epochs of 4 steps at the smallest batch, 16, hold the 960 steps of 30 epochs at 1,000 per class
    if mode == "scratch":
        assert curve.schedule(cfg, 25) == {"train.batch_size": 16, "train.epochs": 240}
