"""`deepstudy compare RUN_DIR...`: finished runs side by side, from their files alone.

One row per run: recipe, tier, the headline metric on validation and test (which metric, and
how it reads, the run's Task says: this module knows no metric names), epochs, wall time,
hardware; then the options that differ between the runs (config.json's "config", flattened to
dotted keys); and one figure of the validation curves laid over each other.

Runs of different kinds of study (a classifier beside a language model) are compared on what
they share: each row states its own metric, the curves get one panel per metric, and only the
options every run has are compared.  A note says so.
"""

from __future__ import annotations

import csv
import glob
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..config import flat
from ..errors import UserError, shown
from ..io import read_csv
from ..rundir import RunDir


@dataclass
class RunSummary:
    """What compare and the report read from one finished run directory."""

    path: Path
    config: dict
    metrics: dict
    history: list[dict]
    task: Any  # tasks.Task
    recipe: Any  # recipes.Recipe, or None when the catalog no longer has it
    score: Any  # tasks.Score: the headline metric
    options: dict = field(default_factory=dict)  # flattened settings
    label: str = ""  # how tables and legends name it: the shortest unique end of its path

    @property
    def name(self) -> str:
        return self.config.get("recipe", "?")


def expand(args: Sequence[str | os.PathLike]) -> list[str]:
    """Each argument as given, or the folders a glob in it matches (sorted): the shell's own
    expansion when the pattern was quoted, and the only one on shells that do not expand."""
    out: list[str] = []
    for arg in map(str, args):
        matches = sorted(glob.glob(arg)) if glob.has_magic(arg) and not os.path.exists(arg) else []
        out += matches or [arg]
    seen: set[Path] = set()
    unique = []
    for arg in out:  # `runs/* runs/lenet*` names some runs twice: once each
        key = Path(arg).resolve()
        if key not in seen:
            seen.add(key)
            unique.append(arg)
    return unique


def finished_runs(args: Sequence[str | os.PathLike], verb: str, at_least: int = 2) -> list[RunDir]:
    """The finished run directories `args` name (globs expanded), or one line saying which are
    not runs, or that there are too few to compare."""
    paths = expand(args)
    bad = [f"{shown(p)} ({RunDir(p).unfinished_reason().split(';')[0]})" for p in paths
           if RunDir(p).unfinished_reason()]
    if bad:
        raise UserError(f"{len(bad)} of {len(paths)} {'is' if len(bad) == 1 else 'are'} not a finished run: "
                        f"{', '.join(bad)}; {verb} takes run directories (runs/NAME-TIMESTAMP, or a glob)")
    if len(paths) < at_least:
        got = f"got {len(paths)}: {shown(paths[0])}" if paths else "got none"
        raise UserError(f"{verb} needs at least {at_least} finished runs to compare, {got}")
    return [RunDir(p) for p in paths]


def summarize(run: RunDir) -> RunSummary:
    """A finished run's files, read once, with its task and recipe (when they still exist)."""
    from .. import recipes
    from ..tasks import Task, get_task

    saved, metrics = run.read_config(), run.read_metrics()
    try:
        task = get_task(saved.get("task", ""))
    except UserError:  # a kind of study registered only where the run was made (a notebook)
        task = Task()
    try:
        recipe = recipes.get_recipe(saved.get("recipe", ""))
    except UserError:
        recipe = None
    history = read_csv(run.history) if run.history.is_file() else []
    columns = list(history[0]) if history else []
    return RunSummary(run.path, saved, metrics, history, task, recipe,
                      task.headline_score(recipe, metrics, columns), flat(saved.get("config", {})))


def _labels(paths: Sequence[Path]) -> list[str]:
    """The shortest ends of the paths that tell them apart: `r1`, or `a/run` and `b/run`."""
    parts = [Path(p).resolve().parts for p in paths]
    for n in range(1, max(map(len, parts)) + 1):
        labels = ["/".join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def show_value(value) -> str:
    """An option's value as a person types it on the command line (--set key=value)."""
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ",".join(map(show_value, value)) or "(none)"
    if isinstance(value, bool):  # as --set takes it
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def duration(seconds) -> str:
    if seconds is None or seconds == "":
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class Comparison:
    """Finished runs side by side.  `text()`, `markdown()`, `csv()` for the terminal and for
    pasting; `figure()` the validation curves; in a notebook the table shows itself."""

    def __init__(self, runs: Sequence[RunSummary]):
        self.runs = list(runs)
        self.plot: Path | None = None  # where api.compare wrote the curves, if it did
        for run, label in zip(self.runs, _labels([r.path for r in self.runs])):
            run.label = label
        kinds = {r.config.get("task", "?") for r in self.runs}
        metrics = {(r.score.metric, r.score.label) for r in self.runs}
        self.same_metric = len(metrics) == 1
        self.notes: list[str] = []
        keys = [set(r.options) for r in self.runs]
        shared = set.intersection(*keys)
        every = set.union(*keys)
        # runs of one kind: a key only some have is a difference too (one model has `hidden`, the
        # other not); runs of different kinds: their own sections are not comparable, keep the shared
        considered = every if len(kinds) == 1 else shared
        self.options = sorted(k for k in considered
                              if len({show_value(r.options.get(k)) for r in self.runs}) > 1)
        self.same_options = len(considered) - len(self.options)
        if len(kinds) > 1:
            by_kind = "; ".join(f"{kind}: {', '.join(r.label for r in self.runs if r.config.get('task') == kind)}"
                                for kind in sorted(kinds))
            note = f"these runs are of different kinds of study ({by_kind}); "
            if self.same_metric:
                note += f"they are compared on the headline metric they share, {self.runs[0].score.label}"
            else:
                note += ("their headline metrics differ (" + ", ".join(sorted(label for _, label in metrics))
                         + "): each row shows its own, and the curves get one panel per metric")
            note += (f"; options compared: the {len(shared)} every run has"
                     + (f" ({len(every) - len(shared)} belong to only some and are left out)" if every != shared else ""))
            self.notes.append(note)
        elif not self.same_metric:
            self.notes.append("the recipes judge their runs by different metrics ("
                              + ", ".join(sorted(label for _, label in metrics)) + "): each row shows its own")

    # ---- the table
    def header(self) -> list[str]:
        score = ["val", "test"]
        if self.same_metric:
            label = self.runs[0].score.label
            score = [f"val {label}", f"test {label}"]
        return ["run", "recipe", "tier"] + ([] if self.same_metric else ["metric"]) + score + \
            ["epochs", "wall time", "hardware"]

    def rows(self) -> list[list[str]]:
        out = []
        for r in self.runs:
            m = r.metrics
            epochs = str(m.get("epochs_run", "—"))
            if m.get("best_epoch") not in (None, m.get("epochs_run")):
                epochs += f" (best {m['best_epoch']})"
            if m.get("stopped_early"):
                epochs += ", stopped early"
            hardware = str(m.get("hardware") or r.config.get("hardware") or "—")
            if (m.get("processes") or 1) > 1:
                hardware += f", {m['processes']} processes"
            out.append([r.label, r.name, str(r.config.get("tier", "—"))]
                       + ([] if self.same_metric else [r.score.label])
                       + [r.score.format(r.score.val), r.score.format(r.score.test)]
                       + [epochs, duration(m.get("wall_seconds")), hardware])
        return out

    def option_rows(self) -> list[list[str]]:
        """One row per option that differs: its key, then its value in each run."""
        return [[key] + [show_value(r.options.get(key)) for r in self.runs] for key in self.options]

    def options_line(self) -> str:
        if not self.options:
            return f"options: the same in every run ({self.same_options} compared)"
        return f"options that differ ({len(self.options)}; the other {self.same_options} are the same in every run):"

    def text(self) -> str:
        lines = [_aligned(self.header(), self.rows()), "", self.options_line()]
        if self.options:
            lines.append(_aligned(["option", *(r.label for r in self.runs)], self.option_rows()))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [_markdown(self.header(), self.rows()), "", self.options_line()]
        if self.options:
            lines += ["", _markdown(["option", *(r.label for r in self.runs)], self.option_rows())]
        lines += [f"\n*Note: {n}.*" for n in self.notes]
        return "\n".join(lines)

    def csv(self) -> str:
        """One row per run, the numbers unformatted (fractions stay fractions) for a spreadsheet."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["run", "recipe", "tier", "task", "metric", "val", "test", "epochs_run", "best_epoch",
                         "wall_seconds", "hardware", *self.options])
        for r in self.runs:
            m = r.metrics
            writer.writerow([str(r.path), r.name, r.config.get("tier", ""), r.config.get("task", ""), r.score.metric,
                             _raw(r.score.val), _raw(r.score.test), m.get("epochs_run", ""), m.get("best_epoch", ""),
                             _raw(m.get("wall_seconds")), m.get("hardware", ""),
                             *(show_value(r.options.get(k)) for k in self.options)])
        return buf.getvalue()

    def _repr_html_(self) -> str:  # Jupyter shows a Comparison as its table
        from .html import comparison_tables
        return comparison_tables(self)

    # ---- the curves
    def figure(self) -> Figure:
        """Each run's validation curve (its headline metric per epoch, or the loss where the
        metric is not recorded per epoch), one panel per kind of curve, the kept epoch starred;
        dashed beside it, the same quantity on the training batches where history.csv has it."""
        panels: dict[str, list[RunSummary]] = {}
        for r in self.runs:
            if r.score.curve and r.history:
                panels.setdefault(r.score.curve_label, []).append(r)
        n = max(1, len(panels))
        cols = min(n, 2)  # two panels a row: a page's width
        rows = -(-n // cols)
        fig = Figure(figsize=(6.4 * cols, 4.2 * rows), layout="constrained")
        axes = list(fig.subplots(rows, cols, squeeze=False).flat)
        for ax in axes[n:]:
            ax.set_axis_off()
        if not panels:
            axes[0].text(0.5, 0.5, "no run has a validation curve in its history.csv", ha="center", va="center")
            axes[0].set_axis_off()
        colors = [f"C{i % 10}" for i in range(len(self.runs))]
        dashed = False
        for ax, (label, runs) in zip(axes, panels.items()):
            for r in runs:
                color = colors[self.runs.index(r)]
                points = [(row["epoch"], row[r.score.curve]) for row in r.history if row.get(r.score.curve) != ""]
                scale = 100 if r.score.percent else 1
                ax.plot([e for e, _ in points], [scale * v for _, v in points], "-", marker="o", ms=3,
                        color=color, label=r.label)
                # the same quantity on the training batches, dashed: the gap between the two
                # lines is what a run learned by heart (cifar-alexnet beside cifar-alexnet-reg)
                train = r.score.curve.replace("val_", "train_", 1)
                trained = [(row["epoch"], row[train]) for row in r.history if row.get(train, "") != ""]
                if trained:
                    ax.plot([e for e, _ in trained], [scale * v for _, v in trained], "--", lw=1,
                            color=color)
                    dashed = True
                best = r.metrics.get("best_epoch")
                kept = [v for e, v in points if e == best]
                if kept:  # the epoch whose weights were kept and met the test set
                    ax.plot([best], [scale * kept[0]], "*", ms=13, color=color, markeredgecolor="black", zorder=3)
            ax.set_xlabel("epoch")
            # whole epochs only (a one-epoch run is a point on a tick, not on an axis of tenths)
            last = max(row["epoch"] for r in runs for row in r.history)
            ax.set_xlim(0.5, last + 0.5)
            if last <= 12:
                ax.set_xticks(range(1, last + 1))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(label + (" (%)" if runs[0].score.percent else ""))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, title="★ kept epoch", title_fontsize=8)
        fig.suptitle(f"validation curves of {len(self.runs)} runs"
                     + (" (dashed: the same on the training batches)" if dashed else ""))
        return fig


def compare(args: Sequence[str | os.PathLike]) -> Comparison:
    """The runs `args` name (folders or globs), read and set side by side."""
    return Comparison([summarize(run) for run in finished_runs(args, "compare")])


def _raw(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _aligned(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    def cells(row):
        return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
    return "\n".join([cells(header), "|" + "---|" * len(header), *map(cells, rows)])
