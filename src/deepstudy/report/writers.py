"""The plots every kind of study draws into its run directory's plots/, each PNG beside the
numbers it shows (CSV or JSON).  They take plain arrays, so the PyTorch and the NumPy studies
draw the same pictures from the same writers."""

from __future__ import annotations

import numpy as np

from ..io import write_csv, write_json
from ..rundir import RunDir
from . import plots


def curves_title(recipe: str, what: str = "training and validation") -> str:
    """The curves' title names the recipe: a PNG looked at outside its run directory (a report,
    a comparison, a chat) still says which run it shows."""
    return f"{recipe}: {what}" if recipe else what


def write_curves(run: RunDir, history: list[dict], title: str = "training and validation", *, recipe: str = "",
                 kept: int | None = None, **options) -> None:
    """curves.png and curves.csv; `kept`: the epoch whose weights the run kept (FitResult.best_epoch)."""
    plots.save(plots.curves(history, curves_title(recipe, title), kept=kept, **options), run.plots / "curves.png")
    write_csv(run.plots / "curves.csv", history)


def write_confusion(run: RunDir, confusion_matrix, classes: list[str]) -> None:
    cm = np.asarray(confusion_matrix)
    for normalized, stem in ((False, "confusion_matrix"), (True, "confusion_matrix_normalized")):
        plots.save(plots.confusion(cm, classes, normalized), run.plots / f"{stem}.png")
        values = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalized else cm
        write_csv(run.plots / f"{stem}.csv", [{"true": c, **{p: round(float(v), 6) if normalized else int(v)
                                                             for p, v in zip(classes, row)}}
                                              for c, row in zip(classes, values)], ["true", *classes])


def write_per_class_accuracy(run: RunDir, report: dict, classes: list[str]) -> None:
    """Each class's test accuracy (its recall), worst first in the plot, beside the overall."""
    recall = [report["per_class"][c]["recall"] for c in classes]
    plots.save(plots.per_class_accuracy(recall, classes, report["accuracy"]), run.plots / "per_class_accuracy.png")
    write_csv(run.plots / "per_class_accuracy.csv",
              [{"class": c, "accuracy": round(a, 6), "support": report["per_class"][c]["support"]}
               for c, a in zip(classes, recall)], ["class", "accuracy", "support"])


def write_prediction_grids(run: RunDir, probs: np.ndarray, true: np.ndarray, images: np.ndarray, classes: list[str],
                           n_grid: int = 32, n_mistakes: int = 24) -> None:
    """The first test images with their predictions, and the most confident mistakes.
    probs: N x classes; true: N labels; images: N x C x H x W uint8."""
    def figure(index, t, p, c, title):
        return plots.image_grid(images[index], t, p, c, classes, title)
    _write_predictions(run, probs, true, classes, figure, n_grid, n_mistakes)


def write_prediction_tables(run: RunDir, probs: np.ndarray, true: np.ndarray, texts: list[str], classes: list[str],
                            n_grid: int = 32, n_mistakes: int = 24) -> None:
    """The text counterpart of the grids: tables of test questions with their predictions
    (the CSVs carry the questions too)."""
    def figure(index, t, p, c, title):
        return plots.text_table([texts[i] for i in index], t, p, c, classes, title)
    _write_predictions(run, probs, true, classes, figure, n_grid, n_mistakes, texts)


def _write_predictions(run: RunDir, probs: np.ndarray, true: np.ndarray, classes: list[str], figure, n_grid: int,
                       n_mistakes: int, texts: list[str] | None = None) -> None:
    d = run.plots
    confidence, pred = probs.max(1), probs.argmax(1)
    fields = ["index", "true", "predicted", "confidence"] + (["text"] if texts is not None else [])

    def rows(index):
        return [{"index": int(i), "true": classes[true[i]], "predicted": classes[pred[i]],
                 "confidence": round(float(confidence[i]), 6), **({"text": texts[i]} if texts is not None else {})}
                for i in index]

    def show(index, title):
        return figure(index, true[index].tolist(), pred[index].tolist(), confidence[index].tolist(), title)

    grid = np.arange(min(n_grid, len(true)))
    plots.save(show(grid, "test predictions (red: mistakes)"), d / "predictions.png")
    write_csv(d / "predictions.csv", rows(grid.tolist()), fields)

    # every test image's prediction and confidence, and how confidence splits right from wrong
    write_csv(d / "confidence.csv", rows(range(len(true))), fields)
    plots.save(plots.confidence_histogram(confidence, pred == true), d / "confidence.png")

    wrong = np.flatnonzero(pred != true)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:n_mistakes]
    if len(worst):
        plots.save(show(worst, "most confident mistakes"), d / "confident_mistakes.png")
    write_csv(d / "confident_mistakes.csv", rows(worst.tolist()), fields)


def write_class_distribution(run: RunDir, counts: dict[str, list[int]], classes: list[str],
                             unit: str = "images") -> None:
    plots.save(plots.class_distribution(counts, classes, unit=unit), run.plots / "class_distribution.png")
    write_json(run.plots / "class_distribution.json", {"classes": classes, **counts})
