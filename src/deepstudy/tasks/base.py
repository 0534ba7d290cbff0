"""The Task interface: what a kind of study (classification, a language model, a forecast, ...)
provides.  Everything else — the run directory, config.json, the epoch driver, checkpoints,
resume, the test-once rule, metrics.json, who writes under torchrun, the CLI — is written once
(tasks/runner.py, train/driver.py, cli.py, api.py) and reaches every kind of study.

A new kind of study is one file:

    from deepstudy.tasks import Built, Task, register_task

    @register_task
    class Echo(Task):
        name = "echo"
        def build(self, ctx): ...            # data and model from ctx.cfg
        def fit(self, ctx, built): ...       # train.driver.run_epochs with its own step
        def score(self, ctx, built, result): ...   # {"val": {...}, "test": {...}}, the test set once
        def headline(self, recipe, metrics): ...
        def load_model(self, run, device): ...
        def evaluate(self, run, split, data_root, device, log): ...

and a recipe whose `task` is "echo".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import config
from ..errors import UserError, shown
from ..registry import Registry
from ..rundir import RunDir

NEEDS = {"predict": "a classifier or a regression", "generate": "a language model (e.g. deepstudy run shakespeare-char-lstm)",
         "forecast": "a forecasting run (e.g. deepstudy run airline-lstm)"}

TASKS: Registry["Task"] = Registry("task", __package__, hint="a recipe's `task` names one of them")


def register_task(cls: type["Task"]) -> type["Task"]:
    """Class decorator: make a Task subclass available under its `name`."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a `name`")
    TASKS.add(cls.name, cls())
    return cls


def get_task(name: str) -> "Task":
    """The task called `name` (the built-in ones, a module of this package each, are imported on
    the first look-up)."""
    return TASKS.get(name)


@dataclass
class RunContext:
    recipe: Any  # recipes.Recipe
    tier: str
    cfg: config.RunConfig
    run: RunDir
    data_root: Path
    device: Any  # torch.device
    resume: bool = False
    log: Callable[[str], None] = print
    progress: bool = True
    show_summary: bool = False
    meta: dict = field(default_factory=dict)  # command line, start time, threads: copied into config.json
    world: Any = None  # train.distributed.World: this process's rank among how many

    @property
    def task(self) -> "Task":
        return get_task(self.recipe.task)


@dataclass
class ExportSample:
    """What `deepstudy export` (deepstudy/export.py, written once) asks of a kind of study: the
    model as it is to be exported and real inputs from the run's own data to check it on."""

    model: Any  # what is exported, in eval mode: forward(*inputs) -> a tensor or a tuple of tensors
    inputs: list[tuple]  # a few batches of real inputs, each a tuple of tensors (or NumPy arrays)
    input_names: list[str]
    output_names: list[str]
    dynamic: list[dict[int, str]]  # per input, the axes whose size may vary: {0: "batch", 1: "length"}
    source: str  # where the inputs came from, for export.json
    # the trained model the exported one must agree with, when `model` is a traceable stand-in
    # for it (a text RNN's unpacked form); None: `model` itself
    reference: Any = None
    extras: dict = field(default_factory=dict)  # arrays an .npz carries beside the weights (the input encoding)


EXPORT_SPLIT = "val"  # the checks read the validation split: the test set stays for the test, once
EXPORT_BATCH = 64  # two batches of this many inputs, then one of a single input (the batch axis varies)


@dataclass
class Built:
    """What a task's `build` hands to the runner: the data and the model, and what the run
    directory records about them."""

    data: Any
    model: Any
    summary: str  # the model's layer table: summary.txt
    intro: str  # the log line before training: sizes, source, parameters
    record: dict = field(default_factory=dict)  # config.json entries ("data", "model", ...) beside the settings
    files: dict[Path, Any] = field(default_factory=dict)  # JSON files written once with config.json (vocab.json)
    outputs: dict = field(default_factory=dict)  # what `score` leaves for `write_plots` (test logits, ...)


@dataclass(frozen=True)
class Score:
    """The number a run is judged by (its recipe's `metric`), as `deepstudy compare` and the HTML
    report show it: which one, how it reads, its validation and test values, and which column of
    history.csv draws its validation curve."""

    metric: str  # the key in metrics.json's "val" and "test": "accuracy", "loss", "rmse", ...
    label: str  # a column's heading: "accuracy", "loss (nats/char)", "RMSE (thousand passengers)"
    val: float | None
    test: float | None
    higher_is_better: bool
    percent: bool = False  # a fraction in metrics.json, shown as a percentage
    curve: str = ""  # history.csv's column of the validation curve ("" when the run has none)
    curve_label: str = ""  # that curve's axis label: it may be another quantity (a forecast's scaled loss)

    def format(self, value) -> str:
        if value is None or value == "":
            return "—"
        return f"{100 * value:.2f}%" if self.percent else f"{value:.4g}"

    def difference(self, ours, theirs) -> str:
        """ours − theirs, in the units a reader compares them in (points for percentages)."""
        if ours is None or theirs is None:
            return "—"
        return f"{100 * (ours - theirs):+.2f} points" if self.percent else f"{ours - theirs:+.4g}"


@dataclass(frozen=True)
class Section:
    """A part of a run's HTML report: a title, the files it shows (paths inside the run directory:
    plots/*.png as pictures, *.txt as text, *.csv as tables; missing ones are left out), and
    optionally a table from metrics.json ("test.per_class": a dict of dicts, one row each)."""

    title: str
    files: tuple[str, ...] = ()
    table: str = ""
    note: str = ""
    instead_of: tuple[str, ...] = ()  # plots this section's files stand in for: not shown again under "More plots"


# metrics where more is better, and which are fractions shown as percentages
_FRACTIONS = ("accuracy", "precision", "recall", "f1")


class Task:
    """A kind of study.  Subclasses set `name` and implement the methods that raise
    NotImplementedError; the others have defaults that suit most."""

    name: str = ""
    distributed: bool = True  # may run under torchrun (each process its shard, process 0 writes)
    resumable: bool = True  # keeps a checkpoint that --resume continues from
    verbs: tuple[str, ...] = ("predict",)  # what a finished run offers beyond eval: predict, generate, forecast
    auto_threads: int = 0  # CPU threads when train.threads is 0 (auto): 0 = the cores other work leaves free
    export_formats: tuple[str, ...] = ("onnx", "torchscript")  # what `deepstudy export --format` offers
    metric: str = "accuracy"  # the headline metric when a run's recipe is unknown (recipes name their own)

    # ---- configuration: resolved and checked before any data or weights are touched
    def option_lookups(self):
        """Where the `data.*` and `model.*` options come from: the PyTorch registries."""
        from ..data import dataset_options
        from ..models import model_options
        return dataset_options, model_options

    def check(self, cfg: config.RunConfig) -> None:
        """Refuse settings that this kind of study cannot use (ConfigError), before any work."""

    def preflight(self, cfg: config.RunConfig) -> None:
        """Before a run's data is read or its directory made: refuse what is sure to fail later
        (a weights file that is not there)."""

    # ---- training: the runner calls build, fit, score, write_plots, headline in this order
    def build(self, ctx: RunContext) -> Built:
        raise NotImplementedError

    def fit(self, ctx: RunContext, built: Built):
        """Train built.model (train/driver.py) and return its FitResult, the model left holding
        the weights chosen on validation."""
        raise NotImplementedError

    def score(self, ctx: RunContext, built: Built, result) -> dict:
        """metrics.json's task-specific part: {"val": {...}, "test": {...}, ...}.  The only
        place the test split is evaluated, once."""
        raise NotImplementedError

    def write_plots(self, ctx: RunContext, built: Built, result, metrics: dict) -> None:
        """plots/: curves and whatever this kind of study shows (may add to metrics)."""
        from ..report.writers import write_curves
        write_curves(ctx.run, result.history, recipe=ctx.recipe.name, kept=result.best_epoch)

    def headline(self, recipe, metrics: dict) -> str:
        raise NotImplementedError

    # ---- reading a finished run (deepstudy compare, deepstudy report): from its files alone
    def headline_score(self, recipe, metrics: dict, columns: Sequence[str] = ()) -> Score:
        """The recipe's headline metric on validation and test (recipe may be None: a run of a
        recipe that is no longer in the catalog is read with the task's own); `columns`:
        history.csv's header, where its validation curve is looked for."""
        metric = recipe.metric if recipe is not None else self.metric
        label = self.metric_label(metric, metrics)
        curve, curve_label = "", ""
        if f"val_{metric}" in columns:
            curve, curve_label = f"val_{metric}", f"validation {label}"
        elif "val_loss" in columns:  # the metric is not recorded per epoch: the loss it was trained on
            curve, curve_label = "val_loss", "validation loss"
        return Score(metric, label, (metrics.get("val") or {}).get(metric), (metrics.get("test") or {}).get(metric),
                     higher_is_better=metric in _FRACTIONS, percent=metric in _FRACTIONS, curve=curve,
                     curve_label=curve_label)

    def metric_label(self, metric: str, metrics: dict) -> str:
        """How the headline metric is named in a table's heading."""
        return metric

    def report_sections(self, saved: dict) -> list[Section]:
        """The HTML report's sections for this kind of study (`saved`: the run's config.json), in
        order.  Whatever plots/*.png no section names are shown after them, so a new plot is
        never lost; a section whose files are all missing is left out."""
        return [Section("Learning curves", ("plots/curves.png",))]

    # ---- a finished run
    def load_model(self, run: RunDir, device="cpu"):
        """(model in eval mode with the weights chosen on validation, the saved config.json)."""
        raise NotImplementedError

    def evaluate(self, run: RunDir, split: str, data_root, device, log=print) -> dict:
        raise NotImplementedError

    # ---- export (deepstudy/export.py writes and checks the file; a task says only what differs)
    def export_data(self, run: RunDir, saved: dict, data_root, log=print):
        """The run's own data, rebuilt as it was when trained (its vocabulary, its normalisation)."""
        from .build import run_data
        return run_data(self, run, saved, data_root, log)

    def export_sample(self, run: RunDir, data_root, log=print) -> ExportSample:
        """The model in eval mode and, as its inputs, real batches of the validation split — a
        model that takes one tensor (images, windows of a series).  Kinds whose model takes more
        (token ids and lengths, a recurrent state) override this."""
        import itertools
        model, saved = self.load_model(run, "cpu")
        data = self.export_data(run, saved, data_root, log)
        batches = [x for x, _ in itertools.islice(data.eval_batches(EXPORT_SPLIT, EXPORT_BATCH), 2)]
        batches.append(next(iter(data.eval_batches(EXPORT_SPLIT, 1)))[0])
        inputs = [tuple(t.cpu() for t in x) if isinstance(x, tuple) else (x.cpu(),) for x in batches]
        return ExportSample(model, inputs, ["input"], ["output"], [{0: "batch"}],
                            f"{EXPORT_SPLIT} split: {' + '.join(str(len(x[0])) for x in inputs)} inputs")

    def format_evaluation(self, recipe: str, out: dict) -> str:
        """`deepstudy eval`'s line: accuracy and loss, or whatever `evaluate` returned."""
        numbers = [f"accuracy {100 * out['accuracy']:.2f}%"] if "accuracy" in out else []
        numbers += [f"{k} {out[k]:.4f}" for k in ("loss", "rmse", "mae") if k in out]
        return f"{recipe} {out['split']}: {'  '.join(numbers)}  ({out['count']:,} {out['unit']})"

    def predict(self, run: RunDir, inputs: list[str], device="cpu", top: int = 3) -> list[dict]:
        """One dict per input, in order; an input that cannot be read gets {"error": why} and
        the others are still predicted (`predict_each` does that)."""
        raise self.not_offered("predict", run)

    def format_prediction(self, item: dict) -> str:
        """One line of `deepstudy predict`: the top classes of an input, or a predicted number."""
        if "error" in item:  # the reason names the input
            return item["error"]
        if "top" in item:
            ranked = "  ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in item["top"])
            return f"{item['file']}: {ranked}" if "file" in item else f"{item['text']}  ->  {ranked}"
        return f"{item['file']}: {item['value']:.4f} {item.get('unit', '')}".rstrip()

    def generate(self, run: RunDir, prompt: str, length: int, temperature: float, top_k: int = 0, seed: int = 0,
                 device="cpu") -> str:
        raise self.not_offered("generate", run)

    def forecast(self, run: RunDir, steps: int, data_root, device="cpu", log=lambda m: None) -> dict:
        raise self.not_offered("forecast", run)

    def not_offered(self, verb: str, run: RunDir) -> UserError:
        offered = " or ".join(f"`deepstudy {v} {run.path} ...`" for v in self.verbs)
        return UserError(f"{run.path} holds a {self.name} run; {verb} needs {NEEDS.get(verb, 'another kind of run')}"
                         + (f"; this one offers {offered}" if offered else ""))


def predict_each(inputs: list[str], key: str, read: Callable[[str], Any],
                 predict: Callable[[list, list[str]], list[dict]]) -> list[dict]:
    """`predict` on every input that `read` accepts, in the inputs' order; an input it refuses
    (a missing file, not an image, an empty text: a UserError naming the input) gets
    {key: input, "error": why}
    instead of throwing away the predictions for all the others."""
    rows: dict[int, dict] = {}
    good: list[tuple[int, Any]] = []
    for i, item in enumerate(inputs):
        try:
            good.append((i, read(item)))
        except UserError as e:
            rows[i] = {key: shown(item), "error": shown(str(e))}
    if good:
        made = predict([x for _, x in good], [shown(inputs[i]) for i, _ in good])
        rows.update((i, row) for (i, _), row in zip(good, made))
    return [rows[i] for i in range(len(inputs))]


def resolve(recipe, tier: str, overrides: dict[str, Any] | None = None) -> config.RunConfig:
    """The recipe at `tier` with the user's dotted overrides, typed and checked (by the
    dataclasses and by the recipe's task) — before any data or weights are touched."""
    task = get_task(recipe.task)
    dataset_options, model_options = task.option_lookups()
    raw = recipe.raw_config(tier)
    overrides = dict(overrides or {})
    # Switching to another model or dataset drops the recipe's options for the old one; options
    # the user sets for the new one are still checked.
    for section in ("data", "model"):
        new = overrides.pop(f"{section}.name", None)
        if new is not None and new != raw[section]["name"]:
            raw[section] = {"name": new}
    cfg = config.resolve(config.merge(raw, overrides), dataset_options, model_options)
    task.check(cfg)
    if cfg.train.tensorboard:  # an optional package: refused here, before any data is read, when missing
        from ..train.tensorboard import require
        require()
    return cfg


def saved_config(task: "Task", saved: dict) -> config.RunConfig:
    """A finished run's settings (its config.json's "config"), typed again."""
    dataset_options, model_options = task.option_lookups()
    return config.resolve(saved["config"], dataset_options, model_options)
