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


def save(fig: Figure, path: Path, dpi: int = 110) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def curves(history: Sequence[dict], title: str = "") -> Figure:
    """Loss and accuracy per epoch, training beside validation."""
    epochs = [r["epoch"] for r in history]
    has_acc = any(r.get("train_accuracy") is not None for r in history)
    fig = Figure(figsize=(10 if has_acc else 5, 3.6))
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
    fig = Figure(figsize=(size, size * 0.9))
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


def _show(ax, image: np.ndarray):
    """image: C x H x W uint8."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(np.transpose(image, (1, 2, 0)))
    ax.set_xticks([])
    ax.set_yticks([])


def image_grid(images: np.ndarray, true: Sequence[int], pred: Sequence[int], confidence: Sequence[float],
               classes: Sequence[str], title: str = "", cols: int = 8) -> Figure:
    """Images with 'predicted (confidence)' above each; mistakes in red with the true class."""
    n = len(images)
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(1.5 * cols, 1.75 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        _show(ax, images[i])
        ok = pred[i] == true[i]
        label = f"{classes[pred[i]]} {100 * confidence[i]:.0f}%"
        if not ok:
            label += f"\ntrue: {classes[true[i]]}"
        ax.set_title(label, fontsize=8, color=RIGHT if ok else MISTAKE)
        if not ok:
            for spine in ax.spines.values():
                spine.set_edgecolor(MISTAKE)
                spine.set_linewidth(2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_distribution(counts: dict[str, Sequence[int]], classes: Sequence[str], title: str = "") -> Figure:
    """Images per class in each split: grouped bars, and a pie of the training split."""
    fig = Figure(figsize=(12, 4))
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
