"""Plots of a run.  Each function returns a matplotlib Figure (a notebook shows it inline) and
never touches pyplot's global state; `save` writes it atomically as PNG.  The run writes the
numbers behind each plot beside it (same name, .csv or .json)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..io import atomic_path

MISTAKE = "#c0392b"
RIGHT = "#1e8449"


def save(fig: Figure, path: Path, dpi: int = 100) -> Path:
    # figures are laid out by the constrained engine when made, so no second 'tight' pass here
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def curves(history: Sequence[dict], title: str = "") -> Figure:
    """Loss and accuracy per epoch, training beside validation."""
    epochs = [r["epoch"] for r in history]
    has_acc = any(r.get("train_accuracy") is not None for r in history)
    fig = Figure(figsize=(10 if has_acc else 5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    for ax, key, label in zip(axes, ("loss", "accuracy"), ("loss (cross-entropy)", "accuracy")):
        for split, style in (("train", "o-"), ("val", "s-")):
            values = [r.get(f"{split}_{key}") for r in history]
            if any(v is not None and v != "" for v in values):
                ax.plot(epochs, values, style, ms=3, label="training" if split == "train" else "validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def confusion(matrix, classes: Sequence[str], normalized: bool = False, title: str = "") -> Figure:
    """Confusion matrix, rows = true class.  Normalised: each row divided by its total (recall on
    the diagonal)."""
    cm = np.asarray(matrix, dtype=float)
    if normalized:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(classes)
    size = max(4.5, 0.5 * k + 2)
    fig = Figure(figsize=(size, size * 0.9), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right" if max(map(len, classes)) > 2 else "center")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        threshold = cm.max() / 2
        for i in range(k):
            for j in range(k):
                text = f"{cm[i, j]:.2f}" if normalized else f"{int(cm[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if k > 10 else 8,
                        color="white" if cm[i, j] > threshold else "black")
    ax.set_title(title or ("confusion matrix (normalised by true class)" if normalized else "confusion matrix (counts)"))
    return fig


def image_grid(images: np.ndarray, true: Sequence[int], pred: Sequence[int], confidence: Sequence[float],
               classes: Sequence[str], title: str = "", cols: int = 8) -> Figure:
    """Images (N x C x H x W uint8) with 'predicted confidence' under each; mistakes framed in
    red with the true class.  Drawn as one mosaic in one axes: 30 small axes take 10x longer."""
    n = len(images)
    c, h, w = images.shape[1:] if n else (1, 1, 1)
    rows = max(1, -(-n // cols))
    pad, text_h = max(2, h // 8), 0.55 * h  # gap between tiles and room for two lines of label
    cell_h, cell_w = h + pad + text_h, w + pad
    mosaic = np.full((int(rows * cell_h) + pad, cols * cell_w + pad, 3), 255, np.uint8)
    fig = Figure(figsize=(1.3 * cols, 1.5 * rows + 0.4), layout="constrained")
    ax = fig.subplots()
    labels = []
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = int(r * cell_h) + pad, k * cell_w + pad
        tile = np.transpose(images[i], (1, 2, 0))
        mosaic[y:y + h, x:x + w] = tile if c == 3 else np.repeat(tile, 3, axis=2)
        ok = pred[i] == true[i]
        if not ok:  # a red frame in the pad around the tile
            frame = np.array([192, 57, 43], np.uint8)
            q = max(1, pad // 2)
            mosaic[y - q:y, x - q:x + w + q] = frame
            mosaic[y + h:y + h + q, x - q:x + w + q] = frame
            mosaic[y:y + h, x - q:x] = frame
            mosaic[y:y + h, x + w:x + w + q] = frame
        label = f"{classes[pred[i]]} {100 * confidence[i]:.0f}%" + ("" if ok else f"\n(true {classes[true[i]]})")
        labels.append((x + w / 2, y + h + 1, label, RIGHT if ok else MISTAKE))
    ax.imshow(mosaic, interpolation="nearest")
    for x, y, label, color in labels:
        ax.text(x, y, label, ha="center", va="top", fontsize=7, color=color)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig


def class_distribution(counts: dict[str, Sequence[int]], classes: Sequence[str], title: str = "") -> Figure:
    """Images per class in each split: grouped bars, and a pie of the training split."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    bar_ax, pie_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    k, splits = len(classes), list(counts)
    width = 0.8 / max(1, len(splits))
    x = np.arange(k)
    for i, split in enumerate(splits):
        bar_ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts[split], width, label=split)
    bar_ax.set_xticks(x, classes, rotation=45 if max(map(len, classes)) > 2 else 0, ha="right" if max(map(len, classes)) > 2 else "center")
    bar_ax.set_ylabel("images")
    bar_ax.legend()
    bar_ax.grid(axis="y", alpha=0.3)
    first = splits[0]
    pie_ax.pie(counts[first], labels=classes, autopct="%1.0f%%", textprops={"fontsize": 7})
    pie_ax.set_title(f"{first} split")
    fig.suptitle(title or "class distribution")
    return fig
