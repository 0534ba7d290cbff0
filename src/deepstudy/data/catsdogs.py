"""Cats vs dogs carved from CIFAR-10, shaped like the seeds' cats_and_dogs_filtered: 1,000
cats and 1,000 dogs to train on, 500 + 500 to validate with (both drawn, seeded, from
CIFAR-10's training split), and CIFAR-10's 2,000 test cats and dogs as the test set, enlarged
from 32x32 to `size` (150 in the seeds; 32 keeps them as they are).

The CIFAR-10 files come from data/cifar.py (the canonical python layout, or `variant=jpeg`,
the JPEG copy): its other eight classes are what the transfer-learning proof pretrains on, so
no cat or dog image the backbone saw is ever among these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image

from ..config import Amount, Count, Fraction, Share, Size
from ..errors import ConfigError
from . import ClassificationData, DataContext, register_dataset
from .folders import seed_augment
from .tensors import ImageTensors, Normalize


@dataclass
class EnlargedData(ClassificationData):
    """Images enlarged from `via` x `via`: `predict` shrinks a photo to that size first."""

    via: int = 0

    def info(self) -> dict:
        return {**super().info(), "via": self.via}


def enlarge(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 N x 3 x h x w -> N x 3 x size x size, bilinear, exactly as `predict` enlarges a photo."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = np.empty((len(images), 3, size, size), np.uint8)
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        out[i] = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR)).transpose(2, 0, 1)
    return torch.from_numpy(out)


def _pick(ds: ImageTensors, counts: tuple[int, ...], seed: int) -> list[ImageTensors]:
    """Consecutive, class-balanced, seeded draws of counts[i] images per class."""
    g = torch.Generator().manual_seed(seed)
    chosen = [[] for _ in counts]
    for label in range(int(ds.labels.max()) + 1):
        index = torch.nonzero(ds.labels == label).flatten()
        index = index[torch.randperm(len(index), generator=g)]
        if len(index) < sum(counts):
            raise ConfigError(f"class {label} has {len(index)} images, fewer than the {sum(counts)} asked for")
        start = 0
        for k, n in enumerate(counts):
            chosen[k].append(index[start:start + n])
            start += n
    return [ds.subset(torch.cat(c).sort().values) for c in chosen]


@register_dataset("cifar10_cats_dogs")
def cifar10_cats_dogs(ctx: DataContext, *, variant: Literal["canonical", "jpeg"] = "canonical",
                      train_per_class: Size = 1000, val_per_class: Size = 500, size: Size = 150, limit: Count = 0,
                      rotation: Amount = 0.0, shift: Share = 0.0, shear: Amount = 0.0, zoom: Fraction = 0.0,
                      flip: bool = False) -> ClassificationData:
    """Cats vs dogs from CIFAR-10 (see data/catsdogs.py).  variant: canonical or jpeg (as for
    cifar10); train_per_class, val_per_class: images per class drawn from CIFAR-10's training
    split; size: side the 32x32 images are enlarged to; limit: cap on training images (smoke
    tests); rotation (degrees), shift (fraction), shear (degrees), zoom (fraction), flip: the
    seeds' augmentation."""
    from .cifar import load_cifar10

    per_class = None
    if limit:  # decode only the first files of each class: a real subset in a fraction of a second
        train_per_class, val_per_class = max(1, limit // 2), max(1, limit // 8)
        per_class = {"train": train_per_class + val_per_class, "test": max(1, limit // 8)}
    splits, names = load_cifar10(ctx, variant, ("cat", "dog"), per_class)
    train, val = _pick(splits.train, (train_per_class, val_per_class), ctx.seed)
    test = splits.test
    train, val, test = (ImageTensors(enlarge(d.images, size), d.labels, d.origin) for d in (train, val, test))
    return EnlargedData("cifar10_cats_dogs", train.to(ctx.device), val.to(ctx.device), test.to(ctx.device), names,
                        Normalize.fit(train.images), splits.source, preprocess="crop",
                        augment=seed_augment(rotation, shift, shear, zoom, flip), note=splits.note,
                        via=32 if size != 32 else 0)
