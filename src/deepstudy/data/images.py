"""Turning a user's image file (any size, any colour mode) into the input a model was trained on.

Four ways, chosen by the dataset (`preprocess` in the run's config):
  digits  MNIST's own procedure: light-on-dark, the ink's bounding box scaled to fit 20x20
          keeping its aspect ratio, centred by centre of mass in a 28x28 frame.
  fit     light-on-dark like Fashion-MNIST, the whole picture scaled to fit, padded square.
  crop    natural photos (CIFAR-sized): shorter side resized, centre crop.
  resize  image folders and CSVs: squashed to the input size, as their training images were.
`via` (a side in pixels) makes a photo as the training images were made from a smaller set:
cats vs dogs carved from CIFAR-10 and enlarged to 150x150 is first cropped to 32x32 here.
A photo of dark ink on white paper is inverted first, since the training images are white on black.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError


def open_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        img = Image.open(path)
        img.load()  # decode now, so a truncated file fails here and not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: not an image that can be read ({type(e).__name__}: {e})") from None
    img = ImageOps.exif_transpose(img)  # phone photos store rotation as a tag
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # transparent drawings: put them on white, as on paper
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale: PIL's convert() would clip them to white."""
    array = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        array = array / 257
    elif img.mode == "F" and array.max() <= 1.0:
        array = array * 255
    elif array.max() > 255:
        array = array * 255 / array.max()
    return Image.fromarray(array.clip(0, 255).round().astype(np.uint8), "L")


def _light_background(gray: np.ndarray) -> bool:
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) > 127


def _digits(gray: np.ndarray, size: int) -> np.ndarray:
    if _light_background(gray):
        gray = 255 - gray
    ink = gray > max(30, int(gray.max()) // 4)
    if not ink.any():
        return np.zeros((size, size), np.uint8)
    rows, cols = np.where(ink)
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box = round(size * 20 / 28)
    h, w = crop.shape
    scale = box / max(h, w)
    small = np.asarray(Image.fromarray(crop).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS))
    canvas = np.zeros((size, size), np.float64)
    ys, xs = np.indices(small.shape)
    mass = small.sum() or 1
    cy, cx = (ys * small).sum() / mass, (xs * small).sum() / mass
    top = int(round(size / 2 - cy))
    left = int(round(size / 2 - cx))
    top = min(max(top, 0), size - small.shape[0])
    left = min(max(left, 0), size - small.shape[1])
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas.clip(0, 255).astype(np.uint8)


def _fit(img: Image.Image, h: int, w: int, invert: bool) -> Image.Image:
    if invert:
        img = ImageOps.invert(img)
    fitted = ImageOps.contain(img, (w, h), Image.LANCZOS)
    canvas = Image.new(img.mode, (w, h), 0)
    canvas.paste(fitted, ((w - fitted.width) // 2, (h - fitted.height) // 2))
    return canvas


def load_image(path: str | Path, in_shape, preprocess: str = "fit", via: int = 0) -> torch.Tensor:
    """uint8 tensor C x H x W ready for the dataset's normalisation."""
    c, h, w = in_shape
    img = open_image(path)
    if via and c == 3:
        small = ImageOps.fit(img, (via, via), Image.BICUBIC) if preprocess == "crop" else img.resize((via, via), Image.BILINEAR)
        return torch.from_numpy(np.asarray(small.resize((w, h), Image.BILINEAR)).copy()).permute(2, 0, 1).contiguous()
    if c == 1:
        gray = img.convert("L")
        if preprocess == "digits" and h == w:
            array = _digits(np.asarray(gray), h)
        else:
            array = np.asarray(_fit(gray, h, w, invert=_light_background(np.asarray(gray))))
        return torch.from_numpy(array.copy()).unsqueeze(0)
    if preprocess == "crop":
        img = ImageOps.fit(img, (w, h), Image.BICUBIC)
    elif preprocess == "resize":
        img = img.resize((w, h), Image.BILINEAR)
    else:
        img = _fit(img, h, w, invert=False)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()
