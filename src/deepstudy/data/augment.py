"""Augmentation of whole uint8 batches, each image with its own random parameters.

One gather per batch instead of a Python call per image, so it costs little next to the
model's step on a CPU and runs unchanged on a GPU.  Random numbers come from the caller's
generator, so a resumed run draws exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import torch


def random_translate(x: torch.Tensor, max_shift: int, generator: torch.Generator | None,
                     pad: str = "zeros") -> torch.Tensor:
    """Shift each image by up to `max_shift` pixels in each direction: a random crop of the
    padded image (the classic `RandomCrop(size, padding)`).  pad: what fills the border,
    "zeros" (torchvision's default) or "reflect" (the image mirrored at its edge, airbench's
    choice: WHY, no black stripes, which the net would otherwise learn as a feature that test
    images never show)."""
    if max_shift <= 0:
        return x
    if pad not in ("zeros", "reflect"):
        raise ValueError(f"pad must be zeros or reflect, got {pad!r}")
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, mode="constant" if pad == "zeros" else "reflect")
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(x.device)
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device))  # n x h
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device))  # n x w
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def downscale(x: torch.Tensor, size: int) -> torch.Tensor:
    """A uint8 batch scaled to size x size pixels (bilinear, antialiased: no aliasing of fine
    texture into coarse patterns the full-size images do not have)."""
    from torchvision.transforms.v2 import functional as TF
    return TF.resize(x, [size, size], antialias=True)


def random_hflip(x: torch.Tensor, generator: torch.Generator | None, p: float = 0.5) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    flip = (torch.rand(len(x), generator=generator) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_cutout(x: torch.Tensor, size: int, generator: torch.Generator | None,
                  fill: tuple[int, ...] | int = 0) -> torch.Tensor:
    """Blank a size x size square at a random centre in each image (DeVries & Taylor 2017).
    The centre may sit near an edge, so the square is sometimes partly outside the image: as in
    the paper, that keeps every pixel equally likely to be hidden."""
    if size <= 0:
        return x
    n, c, h, w = x.shape
    centre = torch.rand(2, n, generator=generator).to(x.device)
    top = (centre[0] * h).long() - size // 2
    left = (centre[1] * w).long() - size // 2
    rows = torch.arange(h, device=x.device)[None, :] - top[:, None]  # n x h, inside when in [0, size)
    cols = torch.arange(w, device=x.device)[None, :] - left[:, None]
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]  # n x h x w
    fill_value = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    return torch.where(inside[:, None], fill_value, x)
