#!/usr/bin/env python
"""Copy measured numbers from finished run directories into the catalog (recipes/measured.json).

    python tools/record.py runs/lenet5-mnist-20261122-101500 [more run dirs...]

Only what a real run wrote is recorded: test and validation metric, epochs, wall time, the
machine, the data it read, the date.  `deepstudy list` and the README's catalog show it.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from deepstudy.io import write_json
from deepstudy.catalog import format_metric
from deepstudy.recipes import MEASURED_FILE, get_recipe, measured


def entry(run_dir: Path) -> tuple[str, str, dict]:
    cfg = json.loads((run_dir / "config.json").read_text())
    m = json.loads((run_dir / "metrics.json").read_text())
    source = m.get("data_source") or cfg.get("data", {}).get("source", "")
    data_note = m.get("data_note") or cfg.get("data", {}).get("note", "")
    record = {
        "test_accuracy": m["test"].get("accuracy"),
        "val_accuracy": m["val"].get("accuracy"),
        "epochs": m.get("epochs_run"),
        "minutes": round(m.get("wall_seconds", m.get("train_seconds", 0)) / 60, 2),
        "hardware": m.get("hardware") or cfg.get("hardware"),
        "device": m.get("device") or cfg.get("device"),
        "data": cfg["config"]["data"]["name"] + (f" ({cfg['config']['data']['variant']} variant)"
                                                  if cfg["config"]["data"].get("variant") else ""),
        "data_source": source,
        "data_note": data_note,
        "date": time.strftime("%Y-%m-%d", time.localtime((run_dir / "metrics.json").stat().st_mtime)),
        "command": " ".join(cfg.get("command", [])),
    }
    for key in ("test", "val"):  # task-specific headline numbers beyond accuracy (loss, rmse, ...)
        for k, v in m[key].items():
            if isinstance(v, (int, float)) and k != "accuracy":
                record[f"{key}_{k}"] = v
    for name, scores in m.get("baselines", {}).items():  # forecasts: the naive forecasts on the same test split
        for k, v in scores.items():
            if isinstance(v, (int, float)) and k != "n":
                record[f"baseline_{name}_{k}"] = v
    if m.get("fitted"):  # a fitted line (scratch-linreg): its weight and bias next to the true ones
        record["fitted"] = m["fitted"] | ({"true": m["true"]} if m.get("true") else {})
    return cfg["recipe"], cfg["tier"], record


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories (config.json, metrics.json)")
    paths = ap.parse_args(argv).run_dirs
    for p in paths:
        if not (Path(p) / "metrics.json").is_file() or not (Path(p) / "config.json").is_file():
            ap.error(f"{p} is not a finished run directory (no config.json and metrics.json)")
    table = measured()
    for p in paths:
        recipe, tier, record = entry(Path(p))
        table.setdefault(recipe, {})[tier] = record
        r = get_recipe(recipe)
        value = record.get(f"{r.metric_split}_{r.metric}")
        print(f"{recipe} [{tier}]: {r.metric_split} {format_metric(r.metric, value) if value is not None else 'recorded'}"
              f", {record['minutes']} min")
    write_json(MEASURED_FILE, dict(sorted(table.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
