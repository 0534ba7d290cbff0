"""LeNet-5 on MNIST, several ways, in one process, alternating, same machine, same epochs:

  (a) deepstudy   `deepstudy run lenet5-mnist --epochs N`: the whole run, from reading the files
                  to the written report (checkpoints, history, metrics, plots)
  (a2) deepstudy  the same, with the tutorial's optimisation (Adam 1e-3 constant, no shifts):
                  only the data pipeline and the 20% validation split differ from (b)
  (b) tutorial    the same model, Adam 1e-3, batch 128, written the usual way: torchvision MNIST +
                  ToTensor/Normalize + DataLoader, trained on all 60,000 images, then tested
  (c) bare loop   a hand-written loop over the same in-memory uint8 tensors as (a), doing the
                  same work as (a) (same split, schedule, augmentation, a validation pass per
                  epoch, one test pass) with nothing else: no checkpoints, no history, no plots

Prints wall times, test accuracies and the ratios a/b (target <= 0.45 at the same accuracy,
+-0.3 points) and a/c (target <= 1.05: what the framework costs over the bare minimum).
Before timing, each variant runs once on a small subset, so that no variant pays the
process's one-time imports (matplotlib, torchmetrics) inside its timed run.

    python benchmarks/mnist_lenet.py [--epochs 3] [--repeats 2]

Timing is wall-clock on whatever else the machine is doing: run it on a quiet machine, and
read the spread between repeats before trusting a ratio.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deepstudy.tasks import resolve  # noqa: E402
from deepstudy import api, recipes
from deepstudy.data import DataContext
from deepstudy.data.augment import random_translate
from deepstudy.data.root import EMBEDDED
from deepstudy.data.tensors import ImageTensors, Normalize, split
from deepstudy.data.vision import load_idx_family
from deepstudy.models import create_model

RECIPE = resolve(recipes.get_recipe("lenet5-mnist"), "quick").as_dict()


def model():
    return create_model("lenet5", (1, 28, 28), 10, **{k: v for k, v in RECIPE["model"].items() if k != "name"})


TUTORIAL_OPTIMISATION = {"optim.lr": 1e-3, "schedule.name": "none", "data.shift": 0}


def deepstudy_run(epochs: int, out: Path, options=None) -> tuple[float, float]:
    t0 = time.perf_counter()
    r = api.run("lenet5-mnist", epochs=epochs, out=out, options=options, progress=False, log=lambda m: None)
    return time.perf_counter() - t0, r.metrics["test"]["accuracy"]


def tutorial(epochs: int, root: Path) -> tuple[float, float]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    t0 = time.perf_counter()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(str(root), train=True, transform=transform)
    test_set = datasets.MNIST(str(root), train=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=128, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)
    torch.manual_seed(0)
    net = model()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        net.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += (net(x).argmax(1) == y).sum().item()
    return time.perf_counter() - t0, correct / len(test_set)


def bare_loop(epochs: int) -> tuple[float, float]:
    """What (a) does, by hand, minus the bookkeeping."""
    t0 = time.perf_counter()
    seed, bs = RECIPE["train"]["seed"], RECIPE["train"]["batch_size"]
    arrays, _ = load_idx_family("mnist", DataContext(root=Path("/nonexistent"), log=lambda m: None))
    full = ImageTensors(torch.from_numpy(arrays["train-images-idx3-ubyte"].copy()).unsqueeze(1),
                        torch.from_numpy(arrays["train-labels-idx1-ubyte"].astype("int64")))
    test = ImageTensors(torch.from_numpy(arrays["t10k-images-idx3-ubyte"].copy()).unsqueeze(1),
                        torch.from_numpy(arrays["t10k-labels-idx1-ubyte"].astype("int64")))
    train, val = split(full, RECIPE["data"]["val_fraction"], seed)
    norm = Normalize.fit(train.images)
    torch.manual_seed(seed)
    net = model().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=RECIPE["optim"]["lr"])
    steps = math.ceil(len(train) / bs) * epochs
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    g = torch.Generator().manual_seed(seed)

    def inputs(x):
        return norm(x).contiguous(memory_format=torch.channels_last)

    def accuracy(ds):
        net.eval()
        with torch.inference_mode():
            right = sum((net(inputs(ds.images[i:i + 1000])).argmax(1) == ds.labels[i:i + 1000]).sum().item()
                        for i in range(0, len(ds), 1000))
        net.train()
        return right / len(ds)

    for _ in range(epochs):
        order = torch.randperm(len(train), generator=g)
        for i in range(0, len(train), bs):
            idx = order[i:i + bs]
            x = inputs(random_translate(train.images[idx], RECIPE["data"]["shift"], g))
            loss = F.cross_entropy(net(x), train.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        accuracy(val)
    return time.perf_counter() - t0, accuracy(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="deepstudy-bench-"))
    tv_root = work / "tv"
    shutil.copytree(EMBEDDED / "MNIST" / "raw", tv_root / "MNIST" / "raw")
    from torchvision import datasets
    datasets.MNIST(str(tv_root), download=True)  # verifies the MD5s and unpacks, offline (files present)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.epochs} epochs, {args.repeats} repeats")
    api.run("lenet5-mnist", tier="smoke", out=work / "warmup", progress=False, log=lambda m: None)
    variants = {
        "a": lambda i: deepstudy_run(args.epochs, work / f"a{i}"),
        "a2": lambda i: deepstudy_run(args.epochs, work / f"a2-{i}", TUTORIAL_OPTIMISATION),
        "b": lambda i: tutorial(args.epochs, tv_root),
        "c": lambda i: bare_loop(args.epochs),
    }
    times = {k: [] for k in variants}
    accs = {k: [] for k in variants}
    for rep in range(args.repeats):
        for key, fn in variants.items():
            seconds, acc = fn(rep)
            times[key].append(seconds)
            accs[key].append(acc)
            print(f"  repeat {rep + 1} ({key}): {seconds:6.1f} s  test accuracy {100 * acc:.2f}%", flush=True)
    shutil.rmtree(work, ignore_errors=True)

    names = {"a": "deepstudy run", "a2": "deepstudy, Adam 1e-3", "b": "tutorial DataLoader", "c": "bare loop"}
    med = {k: statistics.median(v) for k, v in times.items()}
    acc = {k: statistics.mean(v) for k, v in accs.items()}
    print()
    print(f"{'':25}{'median s':>10}{'all runs':>24}{'test acc':>10}")
    for k in variants:
        print(f"({k}) {names[k]:<20}{med[k]:>10.1f}{', '.join(f'{t:.1f}' for t in times[k]):>24}{100 * acc[k]:>9.2f}%")
    print()
    for a in ("a", "a2"):
        print(f"{a}/b = {med[a] / med['b']:.2f}  (target <= 0.45; accuracy difference {100 * (acc[a] - acc['b']):+.2f} "
              f"points, target within 0.3)")
    print(f"a/c = {med['a'] / med['c']:.2f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
