"""Training images per second for cnn_bn on CIFAR-10, three ways, in one process, alternating:

  (a) deepstudy   the training split held in memory as one uint8 tensor; each step slices a
                  shuffled batch, augments the whole batch at once (random crop with 4-pixel
                  padding and horizontal flip, per-image parameters), normalises it in one
                  multiply-add and feeds it channels-last, exactly as `deepstudy run` does
  (b) tutorial    the same model, optimiser and batch size fed the usual way: torchvision's
                  CIFAR10 + RandomCrop(32, padding=4) / RandomHorizontalFlip / ToTensor /
                  Normalize, one PIL image at a time, through a DataLoader (the PyTorch CIFAR-10
                  tutorial's num_workers=2)
  (c) tutorial, channels-last   (b) with the model and each batch made channels-last, as (a)
                  feeds them: what is left of the ratio is the feeding alone

Both train the model of the cifar-cnn-bn recipe's quick tier with SGD for the same number of
steps after the same warm-up, at the recipe's precision (bf16 autocast on every side where the CPU has native bf16);
images/second counts whole training steps (data, forward, backward, update).  Prints each
repeat, the medians and the ratios a/b (target >= 1.5) and a/c.

torchvision's CIFAR10 reads the python layout (cifar-10-batches-py).  When the data root has
none, the benchmark writes one into a temporary folder from the images deepstudy loads (the
JPEG copy with --variant jpeg: then the files are not the canonical ones, so their MD5 check
is skipped; both pipelines see the same pixels).

    DEEPSTUDY_DATA=../shared/datasets python benchmarks/cifar_throughput.py --variant jpeg [--steps 60] [--repeats 2]
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deepstudy.tasks import resolve  # noqa: E402
from deepstudy import recipes
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.cifar import CLASSES, load_cifar10
from deepstudy.data.root import data_root
from deepstudy.models import create_model
from deepstudy.train.loop import autocast, resolve_precision

RECIPE = resolve(recipes.get_recipe("cifar-cnn-bn"), "quick").as_dict()
CPU = torch.device("cpu")
# Both pipelines train at the recipe's precision as a run here would take it (auto: bf16 on a
# CPU with native bf16, else fp32), so the ratio measures how the images are fed, not the arithmetic
PRECISION = resolve_precision(RECIPE["train"]["precision"], CPU)


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("cnn_bn", (3, 32, 32), 10, **{k: v for k, v in RECIPE["model"].items() if k != "name"})


def optimizer(net):
    o = RECIPE["optim"]
    return torch.optim.SGD(net.parameters(), lr=0.01, momentum=o["momentum"], nesterov=o["nesterov"],
                           weight_decay=o["weight_decay"])


def write_python_layout(root: Path, ctx: DataContext, variant: str) -> Path:
    """cifar-10-batches-py/ (5 training batches of 10,000, test_batch, batches.meta) from the
    images deepstudy loaded: rows of 3072 bytes, R then G then B planes, as the originals."""
    splits, _ = load_cifar10(ctx, variant)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def dump(name, images, labels):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": images.reshape(len(images), -1).numpy(), "labels": labels.tolist()}, f)

    for i in range(5):
        part = slice(10_000 * i, 10_000 * (i + 1))
        dump(f"data_batch_{i + 1}", splits.train.images[part], splits.train.labels[part])
    dump("test_batch", splits.test.images, splits.test.labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CLASSES)}, f)
    return root


def deepstudy_steps(data, bs: int, warmup: int, steps: int) -> float:
    net = model().to(memory_format=torch.channels_last)
    opt = optimizer(net)
    g = torch.Generator().manual_seed(0)
    it = iter(data.train_batches(bs, g, channels_last=True))
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        x, y = next(it)
        with autocast(CPU, PRECISION):
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * bs / (time.perf_counter() - t0)


def tutorial_steps(root: Path, mean, std, bs: int, warmup: int, steps: int, canonical: bool,
                   channels_last: bool = False) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    class CIFAR10(datasets.CIFAR10):
        # files written by write_python_layout are not the canonical ones: skip the MD5 checks
        # (of the batches here, of batches.meta through md5=None, which only checks it exists)
        meta = datasets.CIFAR10.meta if canonical else {**datasets.CIFAR10.meta, "md5": None}

        def _check_integrity(self) -> bool:
            return canonical and super()._check_integrity() or not canonical

    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(mean, std)])
    train_set = CIFAR10(str(root), train=True, transform=transform)
    loader = DataLoader(train_set, batch_size=bs, shuffle=True, num_workers=2)
    net = model()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = optimizer(net)
    t0 = 0.0
    it = iter(loader)
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        x, y = next(it)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(CPU, PRECISION):
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    del it  # stop the workers
    return steps * bs / seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=["canonical", "jpeg"], default="canonical")
    ap.add_argument("--steps", type=int, default=60, help="timed training steps per run")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    bs = RECIPE["train"]["batch_size"]
    root = data_root(None)
    ctx = DataContext(root=root, seed=0, device=torch.device("cpu"), log=lambda m: None)
    data = load_dataset("cifar10", ctx, variant=args.variant, val_fraction=0.1, crop=4, flip=True)
    canonical = (root / "cifar-10-batches-py").is_dir() and args.variant == "canonical"
    work = None
    tv_root = root
    if not canonical:
        work = Path(tempfile.mkdtemp(prefix="deepstudy-cifar-bench-"))
        tv_root = write_python_layout(work, ctx, args.variant)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; cnn_bn {RECIPE['model']}, batch {bs}, {PRECISION}, "
          f"{args.steps} timed steps after {args.warmup}; data: {data.source} ({args.variant})")
    rates = {"a": [], "b": [], "c": []}
    for rep in range(args.repeats):
        rates["a"].append(deepstudy_steps(data, bs, args.warmup, args.steps))
        print(f"  repeat {rep + 1} (a) deepstudy: {rates['a'][-1]:7.0f} images/s", flush=True)
        for arm, cl in (("b", False), ("c", True)):
            rates[arm].append(tutorial_steps(tv_root, data.normalize.mean, data.normalize.std, bs, args.warmup,
                                             args.steps, canonical, channels_last=cl))
            print(f"  repeat {rep + 1} ({arm}) tutorial{' channels-last' if cl else ''}: {rates[arm][-1]:7.0f} images/s",
                  flush=True)
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)

    a, b, c = (statistics.median(rates[k]) for k in "abc")
    print()
    print(f"(a) deepstudy in-memory batches + batch augmentation: {a:7.0f} images/s (median)")
    print(f"(b) torchvision CIFAR10 + transforms + DataLoader:    {b:7.0f} images/s (median)")
    print(f"(c) the same, model and batches made channels-last:  {c:7.0f} images/s (median)")
    print(f"a/b = {a / b:.2f}  (target >= 1.5); a/c = {a / c:.2f} (the feeding alone)")


if __name__ == "__main__":
    main()
