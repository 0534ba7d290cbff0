"""Plots of a run.  Each function returns a matplotlib Figure (a notebook shows it inline) and
never touches pyplot's global state; `save` writes it atomically as PNG.  The run writes the
numbers behind each plot beside it (same name, .csv or .json)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter, StrMethodFormatter

from ..io import atomic_path

MISTAKE = "#c0392b"
RIGHT = "#1e8449"
# per-class accuracy: an axis that would start below this starts at 0 (zooming in on bars that
# differ by tens of points hides nothing and would only exaggerate)
ZOOM_FROM = 50.0


def save(fig: Figure, path: Path, dpi: int = 100) -> Path:
    # figures are laid out by the constrained engine when made, so no second 'tight' pass here
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def _given(value) -> bool:
    return value is not None and value != ""  # a CSV round trip turns None into ""


def curves(history: Sequence[dict], title: str = "", loss_label: str = "loss (cross-entropy)",
           log_loss: bool = False, kept: int | None = None, kept_val: dict | None = None) -> Figure:
    """Loss and accuracy per epoch, training beside validation (the loss alone for regression).
    log_loss: a logarithmic loss axis, for losses that fall by orders of magnitude (gradient
    descent on a regression).  kept: the epoch whose weights the run kept (chosen on
    validation), marked by a vertical line on each panel.  kept_val: {"loss", "accuracy",
    "label"}, the kept weights validated otherwise than the epochs were (with test-time
    views), a star at the kept epoch."""
    epochs = [r["epoch"] for r in history]
    has_acc = any(_given(r.get("train_accuracy")) for r in history)
    fig = Figure(figsize=(10 if has_acc else 5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    if log_loss:
        axes[0].set_yscale("log")
    for ax, key, label in zip(axes, ("loss", "accuracy"), (loss_label, "accuracy")):
        for split, style in (("train", "o-"), ("val", "s-")):
            values = [r.get(f"{split}_{key}") for r in history]
            if any(_given(v) for v in values):
                ax.plot(epochs, values, style, ms=3, label="training" if split == "train" else "validation")
        if kept is not None:
            ax.axvline(kept, color="gray", ls="--", lw=1, label=f"kept: epoch {kept}")
            if kept_val and _given(kept_val.get(key)):
                ax.plot([kept], [kept_val[key]], "*", ms=11, color="C3", label=kept_val["label"])
        if key == "accuracy":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))  # the history holds fractions
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def _cell_text(value: float, normalized: bool) -> str:
    """A cell's label: a percentage with one decimal (or a count); an exact zero is a dot, so
    the few errors of a good model stand out, and a share too small for one decimal says so."""
    if value == 0:
        return "·"
    if not normalized:
        return f"{int(value)}"
    return f"{100 * value:.1f}" if 100 * value >= 0.05 else "<0.1"


def confusion(matrix, classes: Sequence[str], normalized: bool = False, title: str = "") -> Figure:
    """Confusion matrix, rows = true class.  Normalised: each row divided by its total (recall on
    the diagonal), shown as percentages.

    At 99% accuracy the errors are a hundred times smaller than the diagonal: on one colour
    scale they all look like zero.  So the diagonal and the errors get scales of their own:
    the diagonal in blue, the errors in red on a logarithmic scale (its colour bar), exact
    zeros left white."""
    cm = np.asarray(matrix, dtype=float)
    if normalized:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(classes)
    size = max(4.5, 0.5 * k + 2)
    fig = Figure(figsize=(size + 0.6, size * 0.9), layout="constrained")
    ax = fig.subplots()
    diagonal = np.eye(k, dtype=bool)
    right = np.ma.masked_where(~diagonal, cm)
    wrong = np.ma.masked_where(diagonal | (cm == 0), cm)
    layers = [ax.imshow(right, cmap="Blues", norm=Normalize(0, right.max() or 1))]
    if wrong.count():  # some errors: their own scale, logarithmic as they span decades
        # the scale starts below the smallest error, so that one is pink, not white like a zero
        low, high = float(wrong.min()) / 2.5, float(wrong.max())
        errors = ax.imshow(wrong, cmap="Reds", norm=LogNorm(low, high))
        layers.append(errors)
        bar = fig.colorbar(errors, ax=ax, fraction=0.046, pad=0.04)
        # ticks at 1, 2, 3, 5 x a power of ten (0.1%, 0.2%, ... or 1, 2, 3, 5, 10 images), about
        # evenly spaced on the log scale: a log axis' own ticks over less than a decade are
        # either none or a crowd of minor ones
        decades = 10.0 ** np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
        ticks = (decades[:, None] * np.array([1, 2, 3, 5])).ravel()
        ticks = ticks[(ticks >= max(low, 0 if normalized else 1)) & (ticks <= high)]  # no half images
        bar.set_ticks(ticks)
        bar.minorticks_off()
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.3g}%") if normalized
                                         else StrMethodFormatter("{x:g}"))
        bar.set_label("errors, " + ("% of the true class" if normalized else "count") + " (log scale)")
    ax.set_facecolor("white")
    long_names = max(map(len, classes)) > 2
    ax.set_xticks(range(k), classes, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                # dark text on light cells, white on dark ones: the cell's own colour decides
                # (a non-zero error has the errors' layer; a zero is white)
                image = layers[0] if diagonal[i, j] else layers[-1]
                dark = cm[i, j] != 0 and _luminance(image.cmap(image.norm(cm[i, j]))) < 0.5
                ax.text(j, i, _cell_text(cm[i, j], normalized), ha="center", va="center",
                        fontsize=7 if k > 10 else 8, color="white" if dark else "black")
    ax.set_title(title or ("confusion matrix, % of each true class" if normalized else "confusion matrix (counts)"))
    return fig


def _luminance(rgba) -> float:
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


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


def class_distribution(counts: dict[str, Sequence[int]], classes: Sequence[str], title: str = "",
                       unit: str = "images") -> Figure:
    """Examples per class in each split: grouped bars, and a pie of the training split."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    bar_ax, pie_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    k, splits = len(classes), list(counts)
    width = 0.8 / max(1, len(splits))
    x = np.arange(k)
    for i, split in enumerate(splits):
        bar_ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts[split], width, label=split)
    long_names = max(map(len, classes)) > 2
    bar_ax.set_xticks(x, classes, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    bar_ax.set_ylabel(unit)
    # above the axes, in one row: inside them it hid the bars under it
    bar_ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(splits), frameon=False)
    bar_ax.grid(axis="y", alpha=0.3)
    first = splits[0]
    pie_ax.pie(counts[first], labels=classes, autopct="%1.0f%%", textprops={"fontsize": 7})
    pie_ax.set_title(f"{first} split")
    fig.suptitle(title or "class distribution")
    return fig


def per_class_accuracy(accuracy: Sequence[float], classes: Sequence[str], overall: float | None = None,
                       title: str = "") -> Figure:
    """Test accuracy of each class (its recall), worst at the bottom, with the overall line.

    A good model's classes all sit between 98 and 100%: on an axis from 0 the bars look alike.
    The axis then starts near the worst class (a round number below it), and the axis label
    and the title say where it starts; each bar carries its value."""
    order = np.argsort(accuracy)
    fig = Figure(figsize=(6, 0.3 * len(classes) + 1.4), layout="constrained")
    ax = fig.subplots()
    values = np.asarray(accuracy, dtype=float)[order] * 100
    lowest = min(values.min(initial=100), 100 * overall if overall is not None else 100)
    # a round tick below the worst class, with some room under it (MaxNLocator picks round numbers)
    start = MaxNLocator(nbins=5).tick_values(lowest - max(0.25 * (100 - lowest), 0.2), 100)[0]
    start = 0.0 if start < ZOOM_FROM else float(start)
    # from `start` the bars begin at the axis' left edge, not at zero
    ax.barh(np.arange(len(classes)), values - start, left=start, color="#4c72b0")
    ax.set_yticks(np.arange(len(classes)), [classes[i] for i in order])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.1f}", va="center", fontsize=7)
    if overall is not None:
        ax.axvline(100 * overall, color="#c44e52", linestyle="--", label=f"overall {100 * overall:.2f}%")
        # outside the axes: inside, at the lower right, it covered the ends of the bars
        fig.legend(loc="outside lower center", fontsize=8, frameon=False)
    # room on the right for the labels of bars that reach 100%; ticks only up to 100
    ax.set_xlim(start, 100 + 0.08 * (100 - start))
    ax.set_xticks([t for t in MaxNLocator(nbins=6).tick_values(start, 100) if start <= t <= 100])
    ax.set_xlabel("test accuracy of the class (%)" + (f"; the axis starts at {start:g}%, not 0" if start > 0 else ""))
    ax.set_title(title or "per-class accuracy")
    return fig


def confidence_histogram(confidence: Sequence[float], correct: Sequence[bool], title: str = "") -> Figure:
    """How sure the model was, split into right and wrong answers: a well-behaved model is
    rarely very sure of a mistake."""
    confidence, correct = np.asarray(confidence), np.asarray(correct, dtype=bool)
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    bins = np.linspace(0, 1, 21)
    ax.hist(confidence[correct], bins=bins, alpha=0.7, label=f"right ({correct.sum():,})", color="#55a868")
    ax.hist(confidence[~correct], bins=bins, alpha=0.7, label=f"wrong ({(~correct).sum():,})", color="#c44e52")
    ax.set_yscale("log")
    ax.set_xlabel("confidence (top softmax probability)")
    ax.set_ylabel("test images")
    ax.legend()
    ax.set_title(title or "confidence of each test prediction")
    return fig


# ------------------------------------------------------------------ time series

def _time_axis(ax, labels: Sequence[str], positions: Sequence[int], max_ticks: int = 10) -> None:
    """Label integer positions with the series' own time labels (dates), a few of them."""
    positions = list(positions)
    if not positions:
        return
    every = max(1, -(-len(positions) // max_ticks))
    ticks = positions[::every]
    ax.set_xticks(ticks, [labels[p] if 0 <= p < len(labels) else f"+{p - len(labels) + 1}" for p in ticks],
                  rotation=30 if max(len(str(labels[0])), 1) > 4 else 0, ha="right")


def series_fit(labels: Sequence[str], values: Sequence[float], fits: dict[str, tuple], periods: dict[str, int],
               unit: str = "", title: str = "") -> Figure:
    """The observed series, and each named forecast as (positions, values) over it.  `periods`
    {"val": first validation step, "test": first test step} are shaded."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax = fig.subplots()
    n = len(values)
    ax.plot(range(n), values, color="black", lw=1.4, label="observed")
    for name, (t, y) in fits.items():
        dashed = "naive" in name or "persistence" in name
        ax.plot(t, y, "--" if dashed else "-", lw=1 if dashed else 1.6, label=name, alpha=0.8 if dashed else 1)
    if "val" in periods:
        ax.axvspan(periods["val"] - 0.5, periods["test"] - 0.5, color="#f5cba7", alpha=0.35, label="validation period")
    if "test" in periods:
        ax.axvspan(periods["test"] - 0.5, n - 0.5, color="#aed6f1", alpha=0.35, label="test period")
    _time_axis(ax, labels, range(n))
    ax.set_ylabel(unit or "value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title)
    return fig


def forecast(labels: Sequence[str], values: Sequence[float], start: int, predicted: Sequence[float],
             unit: str = "", title: str = "", actual_after: Sequence[float] | None = None) -> Figure:
    """History, then a free-running forecast from position `start` (and what really happened, when known)."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(range(len(values)), values, color="black", lw=1.4, label="history")
    steps = range(start, start + len(predicted))
    if actual_after is not None:
        ax.plot(steps[:len(actual_after)], actual_after, color="gray", lw=1.2, label="what happened")
    ax.plot(steps, predicted, "-", color="#c0392b", lw=1.8, label=f"forecast, {len(predicted)} steps")
    ax.axvline(start - 0.5, color="gray", ls=":", lw=1)
    _time_axis(ax, labels, range(start + len(predicted)))
    ax.set_ylabel(unit or "value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title)
    return fig


def sine_predictions(t: Sequence[int], observed: Sequence[float], clean: Sequence[float], one_step: Sequence[float],
                     free_running: Sequence[float], title: str = "") -> Figure:
    """One-step-ahead predictions (the true past is always given) above free-running ones (each
    prediction is fed back as the next input), over the same stretch of the test period."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, pred, name in ((top, one_step, "one-step-ahead"), (bottom, free_running, "free-running")):
        ax.plot(t, observed, ".", color="gray", ms=3, label="observed (noisy)")
        ax.plot(t, clean, color="black", lw=1, label="clean sine")
        ax.plot(t, pred, color="#c0392b", lw=1.6, label=f"{name} prediction")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title(name + (" (the true past is always given)" if name == "one-step-ahead"
                             else " (predictions fed back as inputs)"), fontsize=10)
    bottom.set_xlabel("step")
    if title:
        fig.suptitle(title)
    return fig


def gradient_norms(curves: dict[str, Sequence[float]], title: str = "", floor: float = 1e-45) -> Figure:
    """||dLoss/dh_t|| for every step t of one long sequence, the loss read at the last step:
    on a log scale, vanishing gradients fall off in a straight line going back in time,
    exploding ones climb."""
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.subplots()
    for name, norms in curves.items():
        norms = np.asarray(norms, dtype=float)
        shown = np.where(norms > 0, norms, np.nan)  # a log axis cannot show an exact zero (underflow)
        ax.plot(np.arange(1, len(norms) + 1), shown, lw=1.5, label=name)
    ax.set_yscale("log")
    smallest = min((float(np.min(v[v > 0])) for v in map(np.asarray, curves.values()) if (v > 0).any()), default=1.0)
    if smallest < floor:  # a trained net can reach 1e-300; the curves that matter would be squashed
        ax.set_ylim(bottom=floor)
    ax.set_xlabel("time step t (the loss is computed at the last step)"
                  + (f"; values below {floor:.0e} not shown, the CSV has them" if smallest < floor else ""))
    ax.set_ylabel("||dLoss / dh_t||")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "gradient reaching each step of a long sequence")
    return fig


def clipping(runs: dict[str, dict[str, Sequence[float]]], clip: float, title: str = "") -> Figure:
    """Training loss and gradient norm (before clipping) per step, one line per run."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    loss_ax, norm_ax = fig.subplots(1, 2)
    for name, r in runs.items():
        loss = np.array([np.nan if v is None else v for v in r["loss"]], dtype=float)
        norm = np.array([np.nan if v is None else v for v in r["grad_norm"]], dtype=float)
        loss_ax.plot(np.arange(1, len(loss) + 1), np.where(np.isfinite(loss), loss, np.nan), lw=1.2, label=name)
        norm_ax.plot(np.arange(1, len(norm) + 1), np.where(np.isfinite(norm), norm, np.nan), lw=1.2, label=name)
    norm_ax.axhline(clip, color="black", ls=":", lw=1, label=f"clipping threshold {clip:g}")
    for ax, label in ((loss_ax, "training loss (MSE)"), (norm_ax, "gradient norm before clipping")):
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title or "gradient clipping")
    return fig


def fitted_line(points: dict[str, tuple[Sequence[float], Sequence[float]]], line_x: Sequence[float],
                line_y: Sequence[float], label: str, xlabel: str = "x", ylabel: str = "y", title: str = "",
                truth: tuple[Sequence[float], Sequence[float]] | None = None) -> Figure:
    """A one-input regression: the data of each split as points, the fitted line through them
    (and, when known, the true line dashed)."""
    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.subplots()
    for (split, (x, y)), marker in zip(points.items(), ("o", "s", "^", "D")):
        ax.scatter(x, y, s=14, marker=marker, alpha=0.7, label=split)
    ax.plot(line_x, line_y, color=MISTAKE, lw=2, label=label)
    if truth is not None:
        ax.plot(*truth, "k--", lw=1, label="true line")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "data and fitted line")
    return fig


def decision_boundary(xs: np.ndarray, ys: np.ndarray, prob: np.ndarray, points: np.ndarray, labels: np.ndarray,
                      classes: Sequence[str], title: str = "") -> Figure:
    """A two-class model on the plane: the probability of the second class over a grid (colour,
    with the 0.5 contour as the boundary) and the points with their true class."""
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    filled = ax.contourf(xs, ys, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.4)
    ax.contour(xs, ys, prob, levels=[0.5], colors="k", linewidths=1.5)
    fig.colorbar(filled, ax=ax, label=f"P({classes[1]})")
    for k, (color, marker) in enumerate((("#2166ac", "o"), ("#b2182b", "s"))):
        mine = labels == k
        ax.scatter(points[mine, 0], points[mine, 1], s=16, c=color, marker=marker, edgecolors="black",
                   linewidths=0.5, label=classes[k])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="upper right")
    ax.set_title(title or "decision boundary")
    return fig


def text_table(texts: Sequence[str], true: Sequence[int], pred: Sequence[int], confidence: Sequence[float],
               classes: Sequence[str], title: str = "", width: int = 80) -> Figure:
    """The text counterpart of image_grid: one row per example with the text, the predicted
    class and its confidence, and the true class; mistakes in red."""
    n = len(texts)
    fig = Figure(figsize=(11, 0.26 * (n + 1) + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, 1)
    ax.set_ylim(n + 0.5, -0.8)
    ax.axis("off")
    columns = (0.0, 0.72, 0.88)
    for x, head in zip(columns, ("text", "predicted", "true")):
        ax.text(x, -0.4, head, fontsize=9, fontweight="bold", va="center")
    for i, (text, t, p, c) in enumerate(zip(texts, true, pred, confidence)):
        color = RIGHT if t == p else MISTAKE
        shown = text if len(text) <= width else text[:width - 1] + "…"
        ax.text(columns[0], i + 0.5, shown, fontsize=8, va="center", family="monospace")
        ax.text(columns[1], i + 0.5, f"{classes[p]} {100 * c:.0f}%", fontsize=8, va="center", color=color)
        ax.text(columns[2], i + 0.5, classes[t], fontsize=8, va="center", color="black" if t == p else MISTAKE)
    if title:
        ax.set_title(title)
    return fig
