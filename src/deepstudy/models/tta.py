"""Test-time augmentation for image classifiers: in eval mode, the logits averaged over views of
each image that the net was trained to see, so validation, test, `deepstudy predict` and an
exported model all compute the same function.  A model opts in with a `tta` option and calls
`averaged_logits` from its forward in eval mode (fastnet_cifar, the CIFAR ResNets).

    none            the image alone
    flip            the image and its mirror image, logits averaged
    flip_translate  airbench's six views: the flip pair at weight 1/2, plus the flip pairs of the
                    image shifted one pixel up-left and one pixel down-right (reflected borders)
                    at 1/4 each

WHY it pays: a net trained with random flips (and shifts) has learned each class both ways
round, but its two answers for an image and its mirror still differ by noise; averaging them
cancels part of that noise.  It costs two (or six) forward passes per evaluated image and
nothing in training.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

TTA = Literal["none", "flip", "flip_translate"]


def averaged_logits(logits: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tta: str) -> torch.Tensor:
    """`logits` (the model's own forward, without TTA) averaged over the views `tta` names."""
    if tta == "none":
        return logits(x)
    mirrored = _mirrored(logits, x)
    if tta == "flip":
        return mirrored
    if tta != "flip_translate":
        raise ValueError(f"tta must be none, flip or flip_translate, got {tta!r}")
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    up_left, down_right = padded[..., :h, :w], padded[..., 2:, 2:]
    return 0.5 * mirrored + 0.25 * _mirrored(logits, up_left) + 0.25 * _mirrored(logits, down_right)


def _mirrored(logits, x: torch.Tensor) -> torch.Tensor:
    # one forward pass over the image and its mirror image stacked: a batch twice the size runs
    # faster than two passes (BatchNorm is in eval mode, so the two halves do not mix)
    both = logits(torch.cat([x, x.flip(-1)])).float()
    return 0.5 * (both[:len(x)] + both[len(x):])


VIEWS = {"none": 1, "flip": 2, "flip_translate": 6}  # forward passes per evaluated image


def view_count(model: nn.Module) -> int:
    """How many views of each image `model` (or a part of it) averages in eval mode."""
    return max((VIEWS.get(getattr(m, "tta", "none"), 1) for m in model.modules()), default=1)


def has_views(model: nn.Module) -> bool:
    return view_count(model) > 1


@contextmanager
def single_view(model: nn.Module):
    """`model` evaluates one view of each image inside the block, its own views again after it.
    For the per-epoch validation of train.tta_every_epoch=false: the views cost two or six
    forward passes per image, and only the kept weights' final scores need them."""
    parts = [m for m in model.modules() if getattr(m, "tta", "none") != "none"]
    saved = [m.tta for m in parts]
    for m in parts:
        m.tta = "none"
    try:
        yield
    finally:
        for m, tta in zip(parts, saved):
            m.tta = tta
