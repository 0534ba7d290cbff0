"""MNIST and Fashion-MNIST as in-memory uint8 tensors: the files are found by idx_files.py
(data root, the copy inside the package, torchvision's download), then split, normalised and
optionally augmented here."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from ..config import Count, Fraction, Range
from . import ClassificationData, DataContext, register_dataset
from .augment import random_hflip, random_translate
from .idx_files import FAMILIES, MD5, load_checked, load_idx_family  # noqa: F401  (re-exported)
from .tensors import ImageTensors, Normalize, split


Pixels = Annotated[int, Range(0, 27)]  # a translation inside a 28x28 image


def _tensors(images: np.ndarray, labels: np.ndarray) -> ImageTensors:
    return ImageTensors(torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                        torch.arange(len(labels)))


def _augment(shift: int, flip: bool):
    if not (shift or flip):
        return None

    def augment(x, generator):
        if shift:
            x = random_translate(x, shift, generator)
        if flip:
            x = random_hflip(x, generator)
        return x
    return augment


def _build(kind: str, ctx: DataContext, val_fraction: float, limit: int, shift: int, flip: bool) -> ClassificationData:
    _, _, classes = FAMILIES[kind]
    arrays, source = load_checked(kind, ctx)
    full = _tensors(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"])
    test = _tensors(arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"])
    train, val = split(full, val_fraction, ctx.seed)
    if limit:  # smoke tier: a small real subset, same proportions
        train, val, test = train.subset(slice(0, limit)), val.subset(slice(0, max(1, limit // 4))), test.subset(slice(0, max(1, limit // 4)))
    normalize = Normalize.fit(train.images)
    augment = _augment(shift, flip)
    return ClassificationData(kind, train.to(ctx.device), val.to(ctx.device), test.to(ctx.device), classes, normalize,
                              source, preprocess="digits" if kind == "mnist" else "fit", augment=augment)


@register_dataset("mnist")
def mnist(ctx: DataContext, *, val_fraction: Fraction = 0.1, limit: Count = 0, shift: Pixels = 0,
          flip: bool = False) -> ClassificationData:
    """MNIST digits.  val_fraction: share of the 60k training images held out for validation;
    limit: cap the training images (val and test get a quarter as many; smoke tests);
    shift: random translation of up to this many pixels while training;
    flip: random horizontal flips while training (for clothes, not for digits)."""
    return _build("mnist", ctx, val_fraction, limit, shift, flip)


@register_dataset("fashion_mnist")
def fashion_mnist(ctx: DataContext, *, val_fraction: Fraction = 0.1, limit: Count = 0, shift: Pixels = 0,
                  flip: bool = False) -> ClassificationData:
    """Fashion-MNIST: same options as mnist."""
    return _build("fashion_mnist", ctx, val_fraction, limit, shift, flip)
