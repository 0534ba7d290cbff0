#!/usr/bin/env python
"""Every recipe's smoke tier, on the CPU with a fixed seed and a fixed thread count, its numbers
kept in one JSON file; and a diff of two such files.  A refactoring that should change nothing
is checked by running this before and after it and comparing:

    python tools/smoke_metrics.py run before.json [--data-dir DIR] [--only PATTERN]
    python tools/smoke_metrics.py diff before.json after.json

`run` keeps, per recipe, metrics.json's numbers (times left out: they are facts about the
moment, not about the code) and every history.csv row but its seconds.  `diff` prints each
number that differs and exits 1 when any does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

TIMES = {"seconds", "wall_seconds", "train_seconds", "feature_seconds", "minutes", "started", "images_per_second",
         "chars_per_second"}


def numbers(value, prefix=""):
    """Flatten nested dicts/lists into {"a.b.0": number} for the numbers in them."""
    out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in TIMES:
                out |= numbers(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out |= numbers(v, f"{prefix}{i}.")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix.rstrip(".")] = value
    return out


def run(args) -> int:
    from deepstudy import api
    from deepstudy.io import read_csv
    from deepstudy.recipes import list_recipes

    results = {}
    for recipe in list_recipes(args.only):
        with tempfile.TemporaryDirectory() as tmp:
            r = api.run(recipe.name, tier="smoke", seed=0, device="cpu", threads=args.threads, data_dir=args.data_dir,
                        out=Path(tmp) / "run", progress=False, log=lambda m: None)
            history = read_csv(r.run_dir / "history.csv") if (r.run_dir / "history.csv").exists() else []
            results[recipe.name] = numbers({"metrics": r.metrics, "history": history})
        print(f"{recipe.name}: {len(results[recipe.name])} numbers", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1, sort_keys=True))
    return 0


def diff(args) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (args.before, args.after))
    differences = 0
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"{name}: only in {'after' if name in b else 'before'}")
            differences += 1
            continue
        for key in sorted(set(a[name]) | set(b[name])):
            x, y = a[name].get(key), b[name].get(key)
            same = x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
            if not same:
                print(f"{name}: {key}: {x} -> {y}")
                differences += 1
    print(f"{differences} differences over {len(set(a) | set(b))} recipes")
    return 1 if differences else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("out")
    r.add_argument("--data-dir")
    r.add_argument("--only", default="*", help="recipes whose names match (a part or a glob)")
    r.add_argument("--threads", type=int, default=2, help="the same count before and after (default 2)")
    d = sub.add_parser("diff")
    d.add_argument("before")
    d.add_argument("after")
    args = ap.parse_args()
    return run(args) if args.command == "run" else diff(args)


if __name__ == "__main__":
    sys.exit(main())
