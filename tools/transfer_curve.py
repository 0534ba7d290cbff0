#!/usr/bin/env python
"""Transfer as a data-efficiency curve: the catsdogs transfer recipes (from scratch, frozen
features, fine-tuned) at several training-set sizes, each with several seeds, on the same test
set (CIFAR-10's 2,000 test cats and dogs):

    python tools/transfer_curve.py --out runs/curve --weights runs/cifar8-fast [--family fast|cifar]
        [--sizes 25,50,100,250,1000] [--seeds 0,1,2] [--modes scratch,features,finetune]
        [--threads 1] [--tier T] [--set key=value ...] [--data-dir DIR]

Each cell is an ordinary run of catsdogs-<family>-<mode> with data.train_per_class=N, into
OUT/<mode>-n<N>-s<seed>.  A cell whose folder already holds metrics.json is kept as it is, and
one that was interrupted is resumed, so running the same command again continues a sweep.
After every cell OUT/curve.csv (one row per run; minutes = training time, metrics.json's
train_seconds, which counts the epochs of every resumed part, where wall_seconds counts only the
last), OUT/curve.md (mean and standard deviation
over seeds, and the fine-tuned net's margin over scratch) and OUT/curve.png are written again
from the runs' metrics.json and config.json: no number is typed by hand.

The validation split stays the recipe's (500 cats + 500 dogs) at every size, so that every
size chooses its best epoch equally well informed; only the training set shrinks.  The seed
also draws the training and validation images (data/catsdogs.py), so the three modes of one
seed train on the same images and their differences are paired.

Small sizes get as many optimizer steps as the recipe takes at its own size, data.train_per_class
(1,000 per class; `--set data.train_per_class=N` makes N the reference): see `schedule`.
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

from deepstudy import api
from deepstudy.config import parse_assignments
from deepstudy.errors import UserError
from deepstudy.io import read_json, write_csv, write_text
from deepstudy.recipes import get_recipe
from deepstudy.tasks import resolve

MODES = ("scratch", "features", "finetune")
CLASSES = 2  # cats and dogs: data.train_per_class images of each
# An epoch of at least this many steps.  Why: one full-batch step per epoch (64 images > 50)
# is a different optimiser from the recipe's minibatches; and every epoch ends in a validation
# pass over 1,000 images, which costs more than training 8 small batches, so the step floor
# reached in fewer, longer epochs costs less (at 4 steps an epoch, most of a small cell's time
# went to validation)
MIN_STEPS_PER_EPOCH = 8
# Why not smaller: BatchNorm's batch statistics grow noisy below ~16, and the recipe's learning
# rate was set for 64; the floor of steps, not a tiny batch, is what the small sets need
MIN_BATCH = 16
FIELDS = ["mode", "per_class", "seed", "val_accuracy", "test_accuracy", "minutes", "train_images", "test_images",
          "batch_size", "epochs", "finetune_epochs", "run_dir"]


def schedule(cfg, per_class: int) -> dict:
    """The batch and epochs of a cell with `per_class` images per class, as options; `cfg` is
    the recipe as it is (its own data.train_per_class, 1,000 in the catsdogs recipes).

    Why: the recipes' epochs were chosen for 1,000 images per class (32 steps an epoch at batch
    64).  Kept as they are, 25 images per class would train for 30 optimizer steps: a scratch
    baseline stopped long before it could fit, which would flatter transfer.  So every size
    gets at least the optimizer steps the recipe takes at its own size (each stage
    on its own: train.epochs for scratch and the head, transfer.finetune_epochs for fine-
    tuning), its epochs scaled up to reach them; the batch shrinks so that an epoch still has
    MIN_STEPS_PER_EPOCH steps (never below MIN_BATCH).  Validation picks the best epoch, so
    the extra steps cannot cost a small run its best weights, only time."""
    n = CLASSES * per_class
    batch = min(cfg.train.batch_size, max(MIN_BATCH, math.ceil(n / MIN_STEPS_PER_EPOCH)))
    steps = math.ceil(n / batch)
    # steps an epoch at the recipe's own size: the reference, whichever sizes a sweep lists, so
    # that a cell's settings never depend on the command that ran it (a resumed cell keeps them)
    target = math.ceil(CLASSES * cfg.data.options["train_per_class"] / cfg.train.batch_size)

    def scaled(epochs: int) -> int:
        return max(epochs, math.ceil(epochs * target / steps))

    options = {"train.batch_size": batch, "train.epochs": scaled(cfg.train.epochs)}
    if cfg.transfer.mode == "finetune":
        options["transfer.finetune_epochs"] = scaled(cfg.transfer.finetune_epochs)
    return options


def cell_options(recipe: str, tier: str | None, per_class: int, weights: str | None, sets: dict) -> dict:
    options = dict(sets)
    if weights is not None and not recipe.endswith("-scratch"):
        options["transfer.weights"] = weights
    r = get_recipe(recipe)
    steps = schedule(resolve(r, tier or r.default_tier, options), per_class)
    # a tier's data.limit replaces train_per_class (data/catsdogs.py): here the size is the point
    return {**options, "data.train_per_class": per_class, "data.limit": 0, **steps}


def sweep(args) -> None:
    out = Path(args.out)
    sets = parse_assignments(args.assignments)
    cells = [(mode, n, seed) for seed in args.seeds for n in args.sizes for mode in args.modes]
    # seed-major: an interrupted sweep has whole curves of the first seeds, not all seeds of a few sizes
    for i, (mode, n, seed) in enumerate(cells, 1):
        run_dir = out / f"{mode}-n{n}-s{seed}"
        name = f"[{i}/{len(cells)} {run_dir.name}]"
        if (run_dir / "metrics.json").is_file():
            print(f"{name} finished before: kept", flush=True)
            continue
        recipe = f"catsdogs-{args.family}-{mode}"
        options = cell_options(recipe, args.tier, n, args.weights, sets)
        resume = (run_dir / "config.json").is_file()  # interrupted: continue it with the same settings
        print(f"{name} {'resuming' if resume else 'training'} {recipe}: "
              + " ".join(f"{k}={v}" for k, v in options.items() if sets.get(k) != v), flush=True)
        api.run(recipe, tier=args.tier, seed=seed, threads=args.threads, options=options, data_dir=args.data_dir,
                out=run_dir, resume=resume, progress=False, log=lambda msg, name=name: print(f"{name} {msg}", flush=True),
                command=[sys.executable, *sys.argv])
        write_curve(out)
    write_curve(out)
    if (out / "curve.md").is_file():
        print(f"{out / 'curve.md'}:\n{(out / 'curve.md').read_text()}", flush=True)


# ------------------------------------------------------------------ the table and the plot, from the runs

def collect(out: Path) -> list[dict]:
    rows = []
    for d in sorted(out.glob("*-n*-s*")):
        if not (d / "metrics.json").is_file():
            continue
        m, c = read_json(d / "metrics.json"), read_json(d / "config.json")
        settings = c["config"]
        rows.append({"mode": m["transfer"]["mode"], "per_class": settings["data"]["train_per_class"],
                     "seed": settings["train"]["seed"], "val_accuracy": m["val"]["accuracy"],
                     "test_accuracy": m["test"]["accuracy"], "minutes": round(m["train_seconds"] / 60, 2),
                     "train_images": c["data"]["sizes"]["train"], "test_images": c["data"]["sizes"]["test"],
                     "batch_size": settings["train"]["batch_size"],
                     "epochs": settings["train"]["epochs"],
                     "finetune_epochs": settings["transfer"]["finetune_epochs"] if m["transfer"]["mode"] == "finetune" else "",
                     "run_dir": str(d)})
    order = {m: i for i, m in enumerate(MODES)}
    return sorted(rows, key=lambda r: (r["per_class"], order[r["mode"]], r["seed"]))


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single run)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(rows: list[dict]) -> dict:
    """{(mode, per_class): [test accuracy of each seed]} and {(mode, per_class, seed): accuracy}."""
    by_seed = {(r["mode"], r["per_class"], r["seed"]): r["test_accuracy"] for r in rows}
    cells = {}
    for (mode, n, _), acc in sorted(by_seed.items()):
        cells.setdefault((mode, n), []).append(acc)
    return {"cells": cells, "by_seed": by_seed}


def margins(by_seed: dict, sizes: list[int]) -> dict:
    """finetune - scratch per size, paired by seed (the same training images)."""
    out = {}
    for n in sizes:
        diffs = [by_seed[("finetune", n, s)] - by_seed[("scratch", n, s)] for (mode, m, s) in by_seed
                 if mode == "scratch" and m == n and ("finetune", n, s) in by_seed]
        if diffs:
            out[n] = diffs
    return out


def table(rows: list[dict]) -> str:
    s = summarize(rows)
    sizes = sorted({r["per_class"] for r in rows})
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    diffs = margins(s["by_seed"], sizes)
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    tested = ", ".join(f"{t:,}" for t in sorted({r["test_images"] for r in rows}))  # one size: the same test set
    lines = [f"Test accuracy (%) on the {tested} test images (cats and dogs): mean ± sample standard deviation over "
             "seeds (n = number of seeds). Margin: fine-tuned minus scratch, in points, paired by seed.", "",
             "| images per class | " + " | ".join(modes) + " | finetune − scratch |",
             "| ---: | " + " | ".join("---:" for _ in modes) + " | ---: |"]
    for n in sizes:
        cols = []
        for mode in modes:
            accs = s["cells"].get((mode, n))
            if accs:
                mean, sd = spread(accs)
                cols.append(f"{pct(mean)}" + (f" ± {pct(sd)}" if len(accs) > 1 else "") + f" (n={len(accs)})")
            else:
                cols.append("")
        if n in diffs:
            mean, sd = spread(diffs[n])
            cols.append(f"{100 * mean:+.1f}" + (f" ± {pct(sd)}" if len(diffs[n]) > 1 else "") + f" (n={len(diffs[n])})")
        else:
            cols.append("")
        lines.append(f"| {n:,} | " + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    from deepstudy.report.plots import save

    s = summarize(rows)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for mode, color in zip(MODES, ("#7f8c8d", "#2874a6", "#c0392b")):
        sizes = sorted(n for (m, n) in s["cells"] if m == mode)
        if not sizes:
            continue
        stats = [spread(s["cells"][(mode, n)]) for n in sizes]
        means, sds = [100 * m for m, _ in stats], [100 * sd for _, sd in stats]
        ax.errorbar(sizes, means, yerr=sds, color=color, marker="o", capsize=4, label=mode)
        for n in sizes:  # every seed, so the spread is seen and not only summarised
            accs = s["cells"][(mode, n)]
            ax.scatter([n] * len(accs), [100 * a for a in accs], color=color, s=10, alpha=0.4)
    ax.axhline(50, color="black", linestyle=":", linewidth=1, label="chance (2 balanced classes)")
    ax.set_xscale("log")
    sizes = sorted({r["per_class"] for r in rows})
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training images per class (cats vs dogs, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Transfer as data efficiency: mean ± std over seeds (dots: each seed)")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)


def write_curve(out: Path) -> None:
    rows = collect(out)
    if not rows:
        return
    write_csv(out / "curve.csv", rows, FIELDS)
    write_text(out / "curve.md", table(rows))
    plot(rows, out / "curve.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    p.add_argument("--out", required=True, help="the sweep's folder: a run directory per cell, curve.csv/md/png")
    p.add_argument("--family", default="fast", choices=("fast", "cifar"),
                   help="catsdogs-fast-* (fastnet, the default) or catsdogs-cifar-* (vgg_small)")
    p.add_argument("--sizes", type=ints, default=[25, 50, 100, 250, 1000], help="training images per class")
    p.add_argument("--seeds", type=ints, default=[0, 1, 2])
    p.add_argument("--modes", type=lambda t: t.split(","), default=list(MODES))
    p.add_argument("--weights", help="the pretrained backbone (= transfer.weights) for features and finetune: a run "
                                     "directory; default the recipe's (the newest finished run under ./runs)")
    p.add_argument("--threads", type=int)
    p.add_argument("--tier")
    p.add_argument("--data-dir")
    p.add_argument("--set", dest="assignments", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any option of every cell's recipe, e.g. --set train.precision=fp32")
    args = p.parse_args(argv)
    bad = sorted(set(args.modes) - set(MODES))
    if bad:
        p.error(f"--modes: {', '.join(bad)} is not one of {', '.join(MODES)}")
    started = time.time()
    try:
        sweep(args)
    except UserError as e:  # a bad option or a missing backbone: one line, as `deepstudy run` says it
        print(f"transfer_curve: error: {e}", file=sys.stderr)
        return 2
    print(f"sweep done in {(time.time() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
