"""The plots a user reads first, checked on the Figure objects: a 99%-accurate confusion matrix
shows its errors, per-class accuracies between 98 and 100% are told apart, the curves name the
recipe and mark the kept epoch, and no legend hides a bar.  Also through deepstudy.api's Result."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from deepstudy.api import Result
from deepstudy.io import write_json
from deepstudy.report import plots
from deepstudy.report.writers import curves_title, write_class_distribution, write_confusion
from deepstudy.rundir import RunDir

CLASSES = [str(i) for i in range(10)]


def good_confusion() -> np.ndarray:
    """1,000 test images a class, 99.0% right: most errors a few images, one of them a single
    image in 5,000 (class 9 has 5,000), and many pairs never confused."""
    cm = np.diag([1000.0] * 9 + [5000.0])
    errors = {(0, 6): 3, (1, 7): 1, (2, 7): 4, (3, 5): 2, (4, 9): 6, (5, 3): 1, (7, 2): 2, (8, 3): 1, (9, 4): 1}
    for (i, j), n in errors.items():
        cm[i, j] = n
        cm[i, i] -= n
    return cm


def cell_texts(fig) -> dict[tuple[int, int], str]:
    """{(row, column): text} of the numbers written in the matrix's cells."""
    ax = fig.axes[0]
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def luminance(rgba) -> float:
    return 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]


def drawn(fig):
    FigureCanvasAgg(fig)  # a Figure made without pyplot has no renderer of its own
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def test_normalised_confusion_shows_the_errors():
    cm = good_confusion()
    fig = plots.confusion(cm, CLASSES, normalized=True)
    texts = cell_texts(fig)
    # errors as percentages of the true class with one decimal; a single image in 5,000 says "<0.1"
    assert texts[(0, 6)] == "0.3" and texts[(2, 7)] == "0.4" and texts[(4, 9)] == "0.6" and texts[(1, 7)] == "0.1"
    assert texts[(9, 4)] == "<0.1"
    assert texts[(0, 0)] == "99.7" and texts[(9, 9)] == "100.0"
    assert texts[(0, 1)] == "·"  # an exact zero is a dot, not "0.0"
    off = [t for (i, j), t in texts.items() if i != j and cm[i, j] > 0]
    assert len(off) == 9 and all(t not in ("0.00", "0.0", "·") for t in off)

    # the smallest error is coloured, not near-white like the zeros: the errors have their own scale
    errors = fig.axes[0].images[-1]
    for value in (1 / 1000, 1 / 5000):
        assert luminance(errors.cmap(errors.norm(value))) < 0.85, value
    assert any("errors" in ax.get_ylabel() for ax in fig.axes[1:])  # the colour bar says what it scales


def test_confusion_counts_and_a_perfect_model():
    texts = cell_texts(plots.confusion(good_confusion(), CLASSES))
    assert texts[(4, 9)] == "6" and texts[(4, 4)] == "994" and texts[(0, 1)] == "·"
    fig = plots.confusion(np.diag([50, 60, 70]), ["a", "b", "c"], normalized=True)  # no errors: no error scale
    assert len(fig.axes) == 1 and cell_texts(fig)[(1, 1)] == "100.0"


def test_per_class_axis_zooms_to_the_data_and_says_so():
    accuracy = [0.986, 0.997, 0.992, 0.993, 0.991, 0.995, 0.990, 0.998, 0.989, 0.985]
    fig = plots.per_class_accuracy(accuracy, CLASSES, overall=0.9916)
    ax = fig.axes[0]
    low, _ = ax.get_xlim()
    assert 95 < low <= 98.5  # zoomed: 98.5 and 99.8 are far apart
    assert f"starts at {low:g}%" in ax.get_xlabel()
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    # each bar ends at its class's accuracy and carries the value
    assert sorted(round(b.get_x() + b.get_width(), 6) for b in bars) == sorted(round(100 * a, 6) for a in accuracy)
    labels = {t.get_text().strip() for t in ax.texts}
    assert {f"{100 * a:.1f}" for a in accuracy} <= labels
    renderer = drawn(fig)
    legend = fig.legends[0].get_window_extent(renderer)
    assert not any(legend.overlaps(b.get_window_extent(renderer)) for b in bars)


def test_per_class_axis_from_zero_when_classes_differ_widely():
    fig = plots.per_class_accuracy([0.35, 0.9, 0.6], ["a", "b", "c"], overall=0.62)
    assert fig.axes[0].get_xlim()[0] == 0 and "starts at" not in fig.axes[0].get_xlabel()


def history(epochs: int = 5) -> list[dict]:
    return [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e + 0.02 * e, "train_accuracy": 0.9 + e / 100,
             "val_accuracy": 0.9 + min(e, 3) / 100, "lr": 1e-3, "seconds": 1.0} for e in range(1, epochs + 1)]


def kept_lines(ax) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_label().startswith("kept")]


def test_curves_name_the_recipe_and_mark_the_kept_epoch():
    fig = plots.curves(history(), curves_title("lenet5-mnist"), kept=3)
    assert "lenet5-mnist" in fig.get_suptitle()
    assert len(fig.axes) == 2  # loss and accuracy
    for ax in fig.axes:
        (line,) = kept_lines(ax)
        assert list(line.get_xdata()) == [3, 3] and line.get_label() == "kept: epoch 3"
        assert "kept: epoch 3" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert not kept_lines(plots.curves(history(), "x").axes[0])  # nothing kept, nothing marked


def test_class_distribution_legend_hides_no_bar():
    # every bar as tall as the tallest: inside the axes a legend could not but cover one
    counts = {"train": [5000] * 10, "val": [1200] * 10, "test": [1000] * 10}
    fig = plots.class_distribution(counts, CLASSES)
    bar_ax = fig.axes[0]
    renderer = drawn(fig)
    legend = bar_ax.get_legend().get_window_extent(renderer)
    bars = [p.get_window_extent(renderer) for p in bar_ax.patches]
    assert len(bars) == 30 and not any(legend.overlaps(b) for b in bars)
    assert not legend.overlaps(fig.axes[1].get_window_extent(renderer))  # nor the pie


def test_result_plots_show_the_same(tmp_path):
    """A notebook's Result draws from the run directory's numbers what the run's PNGs show."""
    run = RunDir(tmp_path)
    cm = good_confusion()
    write_confusion(run, cm, CLASSES)
    write_class_distribution(run, {"train": [5000] * 10, "val": [1200] * 10, "test": [1000] * 10}, CLASSES)
    recall = cm.diagonal() / cm.sum(1)
    metrics = {"best_epoch": 4, "test": {"accuracy": 0.99, "per_class": {c: {"recall": float(r), "support": 1000}
                                                                         for c, r in zip(CLASSES, recall)}}}
    write_json(run.metrics, metrics)
    r = Result(tmp_path, {"recipe": "lenet5-mnist", "task": "classification", "data": {"classes": CLASSES}},
               metrics, history())

    curves = r.plot_curves()
    assert "lenet5-mnist" in curves.get_suptitle() and kept_lines(curves.axes[0])[0].get_xdata()[0] == 4
    texts = cell_texts(r.plot_confusion(normalized=True))
    assert texts[(0, 6)] == "0.3" and texts[(0, 1)] == "·"
    assert cell_texts(r.plot_confusion())[(0, 6)] == "3"
    assert r.plot_per_class_accuracy().axes[0].get_xlim()[0] > 95
    assert [t.get_text() for t in r.plot_class_distribution().axes[0].get_legend().get_texts()] == ["train", "val", "test"]
    with pytest.raises(Exception, match="per-class"):
        Result(tmp_path, {}, {}, []).plot_per_class_accuracy()
