"""Feature extraction: an epoch of head training on cached backbone features against the same
epoch running the frozen backbone on every batch, in one process, side by side.

  (a) cached     the backbone's features of the training images computed once (timed apart),
                 then each epoch trains the head on them (deepstudy's FeatureData batches)
  (b) backbone   each epoch runs the frozen backbone (eval mode, no gradients) on every batch
                 of normalised images, then trains the head on its output

Same head, optimizer, batch size and images in both; only where the head's inputs come from
differs.  Prints seconds per epoch, the ratio b/a (target >= 10) and after how many epochs the
one-off extraction has paid for itself.  Backbone weights are random: the arithmetic, and so
the time, is the same as with pretrained ones.

    python benchmarks/transfer_features.py [--configs vgg_small_cifar:32 vgg16:150] [--images 2000]

Images: cats and dogs from the CIFAR-10 JPEG copy (DEEPSTUDY_DATA or ../shared/datasets),
enlarged to each input size as the recipes do; random pixels when that copy is absent (the time
does not depend on what the pixels show).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deepstudy.data import DataContext, load_dataset
from deepstudy.data.features import FeatureData, compute_features
from deepstudy.data.tensors import ImageTensors, Normalize, batches
from deepstudy.models import create_model


def images(size: int, n: int) -> ImageTensors:
    for root in (os.environ.get("DEEPSTUDY_DATA"), Path(__file__).resolve().parents[2] / "shared" / "datasets"):
        if root and (Path(root) / "cifar10-jpeg").is_dir():
            data = load_dataset("cifar10_cats_dogs", DataContext(Path(root), log=lambda m: None), variant="jpeg",
                                size=size, train_per_class=n // 2, val_per_class=1)
            print(f"  {len(data.train):,} CIFAR-10 cats and dogs from {root}, enlarged to {size}x{size}")
            return data.train
    g = torch.Generator().manual_seed(0)
    print(f"  {n:,} random {size}x{size} images (no CIFAR-10 JPEG copy found)")
    return ImageTensors(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.arange(n) % 2)


def head_epoch(model, batches_of, optimizer) -> float:
    model.head.train()
    t0 = time.perf_counter()
    for x, y in batches_of():
        loss = F.cross_entropy(model.head(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


def bench(name: str, size: int, n: int, batch_size: int, epochs: int) -> dict:
    print(f"{name} at {size}x{size}:")
    train = images(size, n)
    torch.manual_seed(0)
    model = create_model(name, (3, size, size), 2)
    model.freeze(0)
    model.eval()
    model.to(memory_format=torch.channels_last)
    normalize = Normalize.fit(train.images)
    optimizer = torch.optim.RMSprop(model.head.parameters(), lr=2e-5)

    class Data:  # what compute_features reads
        def eval_batches(self, split, bs, channels_last=False):
            return batches(train, bs, normalize, channels_last=True)

    t0 = time.perf_counter()
    features = compute_features(model, Data(), "train", batch_size=64)
    extract = time.perf_counter() - t0
    cached = FeatureData(features[None], train.labels, {})

    def from_backbone():
        g = torch.Generator().manual_seed(0)
        for x, y in batches(train, batch_size, normalize, generator=g, channels_last=True):
            with torch.no_grad():
                f = model.features(x)
            yield f, y

    g = torch.Generator().manual_seed(0)
    a, b = [], []
    for _ in range(epochs):  # alternated, so drift in the machine's load hits both alike
        a.append(head_epoch(model, lambda: cached.train_batches(batch_size, g), optimizer))
        b.append(head_epoch(model, from_backbone, optimizer))
    a_s, b_s = min(a), min(b)
    row = {"config": f"{name}:{size}", "images": len(train), "extract_s": extract, "cached_epoch_s": a_s,
           "backbone_epoch_s": b_s, "ratio": b_s / a_s, "breakeven_epochs": extract / max(b_s - a_s, 1e-9)}
    print(f"  features {tuple(features.shape[1:])} extracted once in {extract:.1f}s")
    print(f"  epoch on cached features {a_s:.3f}s | epoch running the backbone {b_s:.1f}s | "
          f"ratio {row['ratio']:.0f}x (target >= 10) | extraction pays for itself after "
          f"{row['breakeven_epochs']:.1f} epochs")
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["vgg_small_cifar:32", "vgg16:150"], metavar="MODEL:SIZE")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=20, help="the seeds' batch size")
    p.add_argument("--epochs", type=int, default=2, help="epochs of each kind (the fastest is reported)")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = [bench(c.split(":")[0], int(c.split(":")[1]), args.images, args.batch_size, args.epochs) for c in args.configs]
    print("\n| backbone | images | extraction (once) | epoch, cached features | epoch, backbone every batch | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['config']} | {r['images']:,} | {r['extract_s']:.1f} s | {r['cached_epoch_s']:.3f} s | "
              f"{r['backbone_epoch_s']:.1f} s | {r['ratio']:.0f}x |")


if __name__ == "__main__":
    main()
