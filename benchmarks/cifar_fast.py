"""cifar-fast against the clock: the recipe's full tier on the JPEG copy of CIFAR-10 (45k train /
5k validation), inside a wall-clock budget (default 45 minutes) that covers everything from the
first import to the written report: reading the data, training, validation after every epoch,
the one test pass and the plots.

    DEEPSTUDY_DATA=/work/shared/datasets python benchmarks/cifar_fast.py [--budget-minutes 45] [--epochs N]

How the budget is kept.  The learning-rate schedule is a triangle over the whole run, so the
number of epochs must be fixed before the first step.  Unless --epochs is given, the script
times a few real training steps and one validation batch of the recipe's model (counted in the
elapsed time, like everything else) and picks the largest number of epochs whose predicted
end, plus the test pass and a safety margin, fits in the budget.  As a fallback for a machine
that slows down mid-run, the loop is also told to stop after the epoch that crosses a deadline
one epoch short of the budget (train.max_minutes); it then still evaluates on the test set.

Which weights meet the test set (fixed in advance): the loop's rule, the epoch with the best
validation accuracy (with the decaying schedule this is normally the last one).  The test set
is evaluated once, after training.

Prints one line per epoch with the elapsed seconds since the start, the validation accuracy and
the epoch's own time, then the test accuracy and the total elapsed time.  The run directory
(--out, default runs/cifar-fast-bench-<time>) can be recorded with tools/record.py.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time

T0 = time.perf_counter()  # the clock starts before the heavy imports: they are part of the cost

import torch  # noqa: E402

from deepstudy.config import OptimConfig  # noqa: E402
from deepstudy.tasks import resolve  # noqa: E402
from deepstudy import api, recipes  # noqa: E402
from deepstudy.config import parse_assignments  # noqa: E402
from deepstudy.data import DataContext, load_dataset  # noqa: E402
from deepstudy.data.root import data_root  # noqa: E402
from deepstudy.models import create_model  # noqa: E402
from deepstudy.recipes.cifar_fast import triangle  # noqa: E402
from deepstudy.train.loop import autocast, pick_device, resolve_precision  # noqa: E402
from deepstudy.train.optim import make_optimizer  # noqa: E402

RECIPE = "cifar-fast"
TIER = "full"
JPEG = {"data.variant": "jpeg", "data.val_fraction": 0.1}  # the 45k/5k split of the JPEG copy


def elapsed() -> float:
    return time.perf_counter() - T0


def calibrate(cfg: dict, data_dir, device: torch.device, steps: int = 6, warmup: int = 3) -> dict:
    """Seconds per training step (batch, augmentation and optimiser step included) and per
    validation pass, measured on the recipe's model and real batches.  A throwaway model: the
    real run starts from the same seed as if this had not happened."""
    data = load_dataset("cifar10", DataContext(root=data_root(data_dir), device=device),
                        **{k: v for k, v in cfg["data"].items() if k != "name"})
    model = create_model(cfg["model"]["name"], data.in_shape, len(data.classes),
                         **{k: v for k, v in cfg["model"].items() if k != "name"}).to(device)
    model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), OptimConfig(**cfg["optim"]))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg["train"]["label_smoothing"])
    bs, precision = cfg["train"]["batch_size"], resolve_precision(cfg["train"]["precision"], device)
    g = torch.Generator().manual_seed(1)
    batches = itertools.chain.from_iterable(data.train_batches(bs, g, True) for _ in range(steps + warmup))
    times = []
    # WHY several untimed steps: the first ones build oneDNN's kernels and grow the allocator's
    # pools: with one untimed step the first benchmark here calibrated 1.73 s per step, its
    # epochs then ran at 1.4 s per step, and it finished 11 minutes inside its budget
    for _ in range(steps + warmup):
        t = time.perf_counter()
        x, y = next(batches)
        with autocast(device, precision):
            loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    model.eval()
    eval_bs = cfg["train"]["eval_batch_size"]
    x, _ = next(iter(data.eval_batches("val", eval_bs, True)))
    with torch.inference_mode(), autocast(device, precision):
        model(x)  # warm-up
        t = time.perf_counter()
        model(x)
        per_image = (time.perf_counter() - t) / len(x)
    step = sorted(times[warmup:])[steps // 2]
    return {"step": step, "steps_per_epoch": math.ceil(data.size("train") / bs),
            "val": per_image * data.size("val"), "test": per_image * data.size("test")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-minutes", type=float, default=45.0, help="wall-clock budget for the whole run (45)")
    p.add_argument("--epochs", type=int, default=0, help="train this many epochs (0: as many as fit the budget)")
    p.add_argument("--margin-seconds", type=float, default=120.0,
                   help="kept free at the end for timing noise (120)")
    p.add_argument("--data-dir", default=None, help="folder holding cifar10-jpeg/ (default: DEEPSTUDY_DATA)")
    p.add_argument("--out", default=None, help="run directory (default runs/cifar-fast-bench-<time>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra dotted option for the recipe, e.g. model.tta=flip_translate (repeatable)")
    args = p.parse_args()
    budget = 60 * args.budget_minutes
    options = {**JPEG, **parse_assignments(args.set)}
    recipe = recipes.get_recipe(RECIPE)
    device = pick_device("auto")
    print(f"[{elapsed():7.1f}s] cifar-fast benchmark: budget {budget:.0f}s, device {device}, "
          f"{torch.get_num_threads()} threads", flush=True)

    cfg = resolve(recipe, TIER, options).as_dict()
    cal = calibrate(cfg, args.data_dir, device)
    epoch_s = cal["steps_per_epoch"] * cal["step"] + cal["val"]
    # after training: reload the best weights, the test pass, plots and metrics (a few seconds)
    tail = cal["test"] + 15
    now = elapsed()
    fit_epochs = int((budget - now - 5 - tail - args.margin_seconds) // epoch_s)
    epochs = args.epochs or fit_epochs
    print(f"[{elapsed():7.1f}s] calibration: {cal['step']:.2f}s per step of {cfg['train']['batch_size']} x "
          f"{cal['steps_per_epoch']} steps + validation {cal['val']:.1f}s = ~{epoch_s:.0f}s per epoch; "
          f"{fit_epochs} epochs fit in the budget" + (f"; running {epochs} as asked" if args.epochs else ""), flush=True)
    if epochs < 1:
        raise SystemExit(f"not even one epoch fits in {args.budget_minutes} minutes here (~{epoch_s:.0f}s per epoch)")
    # fallback deadline, measured from about now (the loop's clock starts a little later, so this
    # errs early): stop after the epoch that crosses it, one epoch plus the tail before the budget
    deadline = budget - now - epoch_s - tail - 20
    options["train.max_minutes"] = max(deadline, 1) / 60
    options.update(triangle(epochs))  # the schedule's warm-up is a fixed share of the run

    marks = {}

    def log(msg: str) -> None:
        if msg.startswith("epoch"):
            marks[int(msg.split()[1].split("/")[0])] = elapsed()
        print(f"[{elapsed():7.1f}s] {msg}", flush=True)

    out = args.out or f"runs/cifar-fast-bench-{time.strftime('%Y%m%d-%H%M%S')}"
    r = api.run(RECIPE, tier=TIER, options=options, data_dir=args.data_dir, out=out,
                progress=False, log=log, command=["python", "benchmarks/cifar_fast.py", *sys.argv[1:]])
    total = elapsed()

    print("\nepoch  elapsed_s  val_accuracy  epoch_s")
    for row in r.history:
        e = int(row["epoch"])
        print(f"{e:5d}  {marks.get(e, float('nan')):9.1f}  {100 * float(row['val_accuracy']):11.2f}%  "
              f"{float(row['seconds']):7.1f}")
    m = r.metrics
    print(f"\ntest accuracy {100 * m['test']['accuracy']:.2f}% (weights of epoch {m['best_epoch']}, the best on "
          f"validation: {100 * m['val']['accuracy']:.2f}%; {m['epochs_run']} of {epochs} epochs"
          + (", stopped by the deadline" if m["stopped_early"] else "") + ")")
    print(f"total elapsed {total:.1f}s = {total / 60:.2f} min of a {args.budget_minutes:g}-minute budget: "
          f"{'within' if total <= budget else 'OVER'} budget; test accuracy "
          f"{'meets' if m['test']['accuracy'] >= 0.93 else 'misses'} the 93.0% bar; {m['data_note']}")
    print(f"run directory: {r.run_dir}")


if __name__ == "__main__":
    main()
