"""cifar-fast against airbench94 itself, side by side on one machine and the same data: time and
test accuracy, epoch by epoch, then the ratios of issue 20.

    DEEPSTUDY_DATA=../shared/datasets python benchmarks/cifar_fast_vs_airbench.py
        [--epochs 10] [--peer-epochs 9.9] [--threads N] [--order peer,ours] [--set key=value ...]
        [--peer ../shared/peers/airbench94_cpu.py] [--out runs/vs-airbench] [--peer-log FILE]

Both sides train on all 50,000 training images of the CIFAR-10 JPEG copy and are tested on its
10,000 test images, one after the other (--order) with the same number of threads:
  * the peer: ../shared/peers/airbench94_cpu.py as a subprocess (airbench94, ported to the CPU
    in fp32: ../shared/peers/README.md), for --peer-epochs (airbench's 9.9);
  * ours: `deepstudy run cifar-fast` (full tier's settings) with data.val_fraction=0, so that it
    too trains on all 50,000 images (the recipe itself keeps 5,000 for validation), for --epochs
    with the recipe's schedule stretched over them; --set passes any other option
    (e.g. model.tta=flip_translate for airbench's 6 test views).

Like the peer, which reports its test accuracy after every epoch without test-time augmentation
and counts only training in its clock, this script evaluates our net after every epoch, from the
checkpoint the loop has just written, outside the loop's clock: the seconds compared are training
seconds on both sides (the loop's per-epoch `seconds`; the peer's `total_time_seconds`, which
also counts its whitening fit, and on its closing `eval` row its final 6-view pass).  It prints per
epoch both sides'
cumulative seconds and test accuracy without TTA, and ours with its own TTA, then:
  time ratio      our training seconds / the peer's, before either's final TTA pass (< 1: ours is faster)
  accuracy        our final test accuracy (with the recipe's TTA) - the peer's (with its 6 views)
  time to the peer's final accuracy: our cumulative training seconds at the first epoch whose test
                  accuracy (our TTA) reaches the peer's final, plus one pass of our TTA over the
                  test set, over the peer's total (which counts its TTA pass); "not reached" if none.
The mid-run epochs of a decaying schedule score below the final epoch of a shorter schedule, so
this is conservative: a shorter --epochs that still reaches the peer's accuracy is the real test.

--peer-log FILE reads the peer's rows from the output of an earlier run of it (the peer's own
stdout, or this script's "[peer]" lines) instead of running it again, so several of our
configurations can be compared with one run of the peer; run them in the same sitting, on the same
machine, with nothing else on the cores, or the ratio means nothing.

Reading it on a noisy machine: the two sides run one after the other, so a change in load between
them moves the time ratio.  Compare per-epoch seconds across the run (they should be flat), run
the pair again in the other --order, and quote a ratio only when both orders agree; accuracy
differs by about +-0.15 points between seeds on the peer's side alone.  A whole side-by-side takes
over an hour on an fp32 CPU: iterate with a short equal budget (--epochs 4 --peer-epochs 4).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from deepstudy import api, machine
from deepstudy.config import parse_assignments
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.root import data_root
from deepstudy.models import create_model
from deepstudy.recipes.cifar_fast import triangle
from deepstudy.train.checkpoint import load_checkpoint
from deepstudy.train.loop import evaluate, resolve_precision

DEFAULT_PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "airbench94_cpu.py"
ROW = re.compile(r"^\|\s*(?:\d+\s*)?\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*\|\s*([\d.]+)\s*\|")
FINAL = re.compile(r"FINAL tta_acc=([\d.]+) wall_s=([\d.]+)")
EVAL = re.compile(r"^\|\s*\|\s*eval\s*\|.*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*$")


def parse_peer(lines) -> dict:
    """The peer's per-epoch rows {epoch: (seconds, test accuracy)}, its final TTA accuracy and total seconds."""
    rows, final = {}, {}
    for line in lines:
        line = line.removeprefix("[peer] ")
        if m := ROW.match(line):
            epoch, _, _, acc, seconds = m.groups()
            rows[int(epoch) + 1] = (float(seconds), float(acc))  # the peer counts epochs from 0
        elif m := EVAL.match(line):
            final["tta_accuracy"], final["seconds"] = float(m.group(1)), float(m.group(2))
        elif m := FINAL.match(line):
            final["wall_seconds"] = float(m.group(2))
    return {"rows": rows, **final}


def run_peer(peer: Path, data: Path, epochs: float, threads: int, cache: Path, log: Path) -> dict:
    """Run the peer, its output echoed and kept in `log`; or, if `log` holds a finished run, read it.
    WHY reuse: the peer's 9.9 epochs take about an hour of both cores in fp32, and comparing
    several of our configurations with it in one sitting should not run it again for each."""
    if log.is_file():
        result = parse_peer(log.read_text().splitlines())
        if "tta_accuracy" in result:
            print(f"[peer] read from {log} (a finished run; delete it to run the peer again)", flush=True)
            return result
    cmd = [sys.executable, str(peer), "--data", str(data), "--epochs", str(epochs), "--cache", str(cache)]
    if threads:
        cmd += ["--threads", str(threads)]
    print(f"[peer] {' '.join(cmd)}", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc, \
            open(log, "w") as kept:
        for line in proc.stdout:
            print(f"[peer] {line.rstrip()}", flush=True)
            kept.write(line)
            lines.append(line)
    result = parse_peer(lines)
    if proc.returncode or "tta_accuracy" not in result:
        raise SystemExit(f"the peer failed (exit code {proc.returncode}); its output is above")
    return result


def run_ours(epochs: int, threads: int, data_dir: Path, sets: dict, out: Path) -> dict:
    """Our per-epoch rows {epoch: (seconds, test accuracy without TTA, with TTA)} and final numbers."""
    options = {"data.variant": "jpeg", "data.val_fraction": 0, **triangle(epochs), **sets}
    test = {}  # filled in on the first epoch: the test images, loaded outside the clock
    rows, clock = {}, [0.0]

    def on_epoch(message: str) -> None:
        print(f"[ours] {message}", flush=True)
        if not message.startswith("epoch"):
            return
        epoch = int(message.split()[1].split("/")[0])
        clock[0] += float(re.search(r"\s([\d.]+)s(\s|$)", message).group(1))  # the epoch's seconds
        if not test:  # the run's own settings, from its config.json
            saved = json.loads((out / "config.json").read_text())["config"]
            ctx = DataContext(root=data_root(data_dir), device=torch.device("cpu"))
            test["data"] = load_dataset("cifar10", ctx, **{k: v for k, v in saved["data"].items() if k != "name"})
            test["model"] = {k: v for k, v in saved["model"].items() if k != "tta"}
            test["tta"] = saved["model"]["tta"]
            test["precision"] = resolve_precision(saved["train"]["precision"], torch.device("cpu"))
        weights = load_checkpoint(out / "checkpoint.pt")["model"]  # the epoch the loop has just saved
        scores = []
        for tta in ("none", test["tta"]):
            model = create_model(test["model"]["name"], (3, 32, 32), 10, tta=tta,
                                 **{k: v for k, v in test["model"].items() if k != "name"})
            model.load_state_dict(weights)
            model.to(memory_format=torch.channels_last)
            start = time.perf_counter()
            scores.append(evaluate(model, test["data"], "test", 1000, True, precision=test["precision"])["accuracy"])
        # WHY keep the last evaluation's seconds: the peer's clock counts its final TTA pass, so
        # ours must too when the two are compared for the time to an accuracy
        rows[epoch] = (clock[0], *scores, time.perf_counter() - start)

    r = api.run("cifar-fast", tier="full", threads=threads or None, options=options, data_dir=data_dir, out=out,
                progress=False, log=on_epoch, command=[sys.executable, *sys.argv])
    return {"rows": rows, "test_accuracy": r.metrics["test"]["accuracy"], "seconds": clock[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10, help="our epochs (the recipe's quick tier: 10)")
    ap.add_argument("--peer-epochs", type=float, default=9.9, help="the peer's epochs (airbench94: 9.9)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for both sides (default: each side's own)")
    ap.add_argument("--order", default="peer,ours", choices=("peer,ours", "ours,peer"))
    ap.add_argument("--peer", type=Path, default=DEFAULT_PEER)
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("DEEPSTUDY_DATA"),
                    help="the folder holding cifar10-jpeg/ (default: $DEEPSTUDY_DATA)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/airbench-cifar-cache"), help="the peer's decoded copy")
    ap.add_argument("--out", type=Path, default=Path(f"runs/vs-airbench-{time.strftime('%Y%m%d-%H%M%S')}"),
                    help="our run directory")
    ap.add_argument("--peer-log", type=Path, default=None,
                    help="the peer's output: read from this file if it holds a finished run, else run the peer "
                         "and keep its output here (default: next to --out)")
    ap.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE", help="options for our run")
    args = ap.parse_args()
    if not args.peer.is_file():
        raise SystemExit(f"error: no peer at {args.peer} (--peer PATH: airbench94_cpu.py from ../shared/peers)")
    if args.data_dir is None or not (args.data_dir / "cifar10-jpeg").is_dir():
        raise SystemExit(f"error: no cifar10-jpeg/ under {args.data_dir} (--data-dir or DEEPSTUDY_DATA)")
    print(f"{machine.cpu_name()} ({machine.cpu_isa()}), torch {torch.__version__}, threads {args.threads or 'default'}; "
          f"ours {args.epochs} epochs, the peer {args.peer_epochs} epochs; order {args.order}", flush=True)
    sets = parse_assignments(args.sets)
    results = {}
    for side in args.order.split(","):
        if side == "peer":
            results["peer"] = run_peer(args.peer, args.data_dir, args.peer_epochs, args.threads, args.cache,
                                       args.peer_log or args.out.with_name(args.out.name + "-peer.log"))
        else:
            results["ours"] = run_ours(args.epochs, args.threads, args.data_dir, sets, args.out)
    peer, ours = results["peer"], results["ours"]

    print("\nepoch | peer s  test% (no TTA) | ours s  test% (no TTA)  test% (TTA)")
    for e in range(1, max(len(peer["rows"]), len(ours["rows"])) + 1):
        p, o = peer["rows"].get(e), ours["rows"].get(e)
        left = f"{p[0]:7.1f}  {100 * p[1]:6.2f}" if p else " " * 15
        right = f"{o[0]:7.1f}  {100 * o[1]:6.2f}  {100 * o[2]:6.2f}" if o else ""
        print(f"{e:5d} | {left}        | {right}")
    target = peer["tta_accuracy"]
    peer_training = max(peer["rows"].values())[0]  # its clock at the last epoch, before the TTA pass
    # our time to the peer's accuracy: training seconds up to that epoch plus one TTA pass, as the peer's clock
    reached = next((o[0] + o[3] for e, o in sorted(ours["rows"].items()) if o[2] >= target), None)
    print(f"\npeer: {100 * target:.2f}% test (6-view TTA) after {peer_training:.1f} s of training, "
          f"{peer['seconds']:.1f} s with its TTA pass")
    print(f"ours: {100 * ours['test_accuracy']:.2f}% test (the recipe's TTA) after {ours['seconds']:.1f} s of training, "
          f"{ours['seconds'] + ours['rows'][max(ours['rows'])][3]:.1f} s with its TTA pass")  # [3]: the pass's seconds
    print(f"time ratio ours/peer (training seconds): {ours['seconds'] / peer_training:.3f}")
    print(f"accuracy ours - peer: {100 * (ours['test_accuracy'] - target):+.2f} points")
    print("time to the peer's final accuracy, ours/peer (both with their TTA pass): "
          + (f"{reached / peer['seconds']:.3f} ({reached:.1f} s)" if reached is not None else "not reached"))


if __name__ == "__main__":
    main()
