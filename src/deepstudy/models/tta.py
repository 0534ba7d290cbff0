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

from typing import Callable, Literal

import torch
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
