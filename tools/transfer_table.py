#!/usr/bin/env python
"""The transfer-learning proof as a table, from finished run directories (nothing typed by hand):

    python tools/transfer_table.py [--readme] runs/cifar8-vgg-small-* runs/catsdogs-cifar-*

Prints Markdown: each run's test and validation accuracy, what it trained, its wall time, and
each transfer run's margin over the from-scratch run.  With --readme, also writes it into the
README between `<!-- transfer:start -->` and `<!-- transfer:end -->`.
"""

import contextlib
import io
import json
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def main(args: list[str]) -> int:
    if args and args[0] == "--readme":
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            table(args[1:])
        text = README.read_text(encoding="utf-8")
        new, n = re.subn(r"(<!-- transfer:start -->\n).*?(<!-- transfer:end -->)",
                         lambda m: m.group(1) + out.getvalue() + m.group(2), text, flags=re.S)
        if n != 1:
            print("README.md has no transfer markers", file=sys.stderr)
            return 1
        README.write_text(new, encoding="utf-8")
        print(out.getvalue(), end="")
        return 0
    return table(args)


def table(paths: list[str]) -> int:
    runs = []
    for p in paths:
        d = Path(p)
        cfg = json.loads((d / "config.json").read_text())
        m = json.loads((d / "metrics.json").read_text())
        runs.append((cfg, m))
    scratch = next((m["test"]["accuracy"] for cfg, m in runs if m.get("transfer", {}).get("mode") == "scratch"), None)
    print("| step | recipe | what trains | test accuracy | vs scratch | validation | wall time |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for cfg, m in runs:
        t = m.get("transfer")
        if t is None:
            what = f"all layers, {m['data']} ({len(cfg['data']['classes'])} classes, {cfg['data']['sizes']['train']:,} images)"
        elif t["mode"] == "scratch":
            what = f"all layers from random weights, {cfg['data']['sizes']['train']:,} images"
        else:
            what = " then ".join(
                f"head on cached features ({s['epochs_run']} epochs)" if s["stage"] == "head" else
                f"last {cfg['config']['transfer']['unfreeze']} layers + head ({s['epochs_run']} epochs)"
                for s in t["stages"]) + (" (kept: head alone)" if t["mode"] == "finetune" and t["selected"] == "head" else "")
        acc = m["test"]["accuracy"]
        margin = f"{100 * (acc - scratch):+.1f} points" if t and t["mode"] != "scratch" and scratch is not None else ""
        print(f"| {'pretrain' if t is None else t['mode']} | `{m['recipe']}` ({m['tier']}) | {what} | {100 * acc:.2f}% | "
              f"{margin} | {100 * m['val']['accuracy']:.2f}% | {m['wall_seconds'] / 60:.1f} min |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
