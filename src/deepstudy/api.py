"""What notebooks and scripts import:

    from deepstudy import run, load_run
    r = run("lenet5-mnist", epochs=2)
    r.metrics["test"]["accuracy"], r.history, r.run_dir
    r.plot_curves(); r.plot_confusion(normalized=True); r.plot_per_class_accuracy(); r.plot_class_distribution()
    r.plot_predictions(); r.plot_mistakes()
    run("shakespeare-char-lstm").generate("ROMEO:", length=300, temperature=0.5)
    export(r.run_dir, format="onnx")   # RUN_DIR/export/model.onnx, checked with onnxruntime
    compare(["runs/lenet5-mnist-*"])            # a table (shown as HTML in a notebook) and .figure()
    report("runs/lenet5-mnist-20261122-101500")  # its self-contained report.html
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import machine, recipes
from .config import read_settings_file
from .errors import ConfigError, UserError
from .io import read_csv, write_json
from .rundir import RunDir
from .tasks import RunContext, get_task, resolve, runner, saved_config
from .train import distributed
from .train import loop as train_loop  # a module reference: tests stand in for native_bf16 there
from .train.checkpoint import load_checkpoint
from .train.loop import pick_device, resolve_precision
from .data.root import data_root as find_data_root

# What may differ when a run is resumed: only where it runs, and the precision that machine can
# compute in.  Anything else (even the epoch count: the schedule was laid out for it) would make
# the result unlike the uninterrupted run's.
# TensorBoard logging changes no number, so a resumed run may turn it on or off.
RESUMABLE_CHANGES = {"train.device", "train.precision", "train.threads", "train.tensorboard"}


@dataclass
class Result:
    run_dir: Path
    config: dict
    metrics: dict
    history: list[dict]

    # ---- plots: each returns a matplotlib Figure, which a notebook displays inline
    def plot_curves(self):
        """Loss (and accuracy) per epoch, the recipe in the title, the kept epoch marked."""
        from .report import plots
        from .report.writers import curves_title
        title, kept = curves_title(self.config.get("recipe", "")), self.metrics.get("best_epoch")
        if self.history and "val_rmse" in self.history[0]:  # a regression: mean squared error over decades
            return plots.curves(self.history, title, loss_label="loss (mean squared error)", log_loss=True, kept=kept)
        from .tasks.classification import kept_with_views
        return plots.curves(self.history, title, kept=kept, kept_val=kept_with_views(self.metrics))

    def plot_confusion(self, normalized: bool = False):
        from .report import plots
        # the counts, normalised by the plot itself: the same figure as the run's PNG
        rows = read_csv(self.run_dir / "plots" / "confusion_matrix.csv")
        classes = [str(r["true"]) for r in rows]
        counts = [[int(r[c]) for c in rows[0] if c != "true"] for r in rows]
        return plots.confusion(counts, classes, normalized=normalized)

    def plot_per_class_accuracy(self):
        """Each class's test accuracy, the axis zoomed to where the classes are (and saying so)."""
        from .report import plots
        per_class = self.metrics.get("test", {}).get("per_class")
        if not per_class:
            raise UserError(f"{self.run_dir} has no per-class test accuracy: it is not a finished classification run")
        classes = list(per_class)
        return plots.per_class_accuracy([per_class[c]["recall"] for c in classes], classes,
                                        self.metrics["test"].get("accuracy"))

    def plot_class_distribution(self):
        """Examples per class in each split (its numbers: plots/class_distribution.json)."""
        from .io import read_json
        from .report import plots
        path = self.run_dir / "plots" / "class_distribution.json"
        if not path.is_file():
            raise UserError(f"{self.run_dir} has no plots/class_distribution.json: it is not a classification run")
        from .data.text import TextClassificationData
        counts = read_json(path)
        classes = counts.pop("classes")
        text = self.config.get("data", {}).get("kind") == "text"
        return plots.class_distribution(counts, classes, unit=TextClassificationData.unit if text else "images")

    def _grid(self, csv_name: str, title: str):
        from .report import plots
        from .tasks.build import build_data
        from .tasks.classification import split_images
        if not (self.run_dir / "plots" / csv_name).is_file():
            raise UserError(f"{self.run_dir} has no plots/{csv_name}: its data are not images")
        rows = read_csv(self.run_dir / "plots" / csv_name)
        if not rows:
            raise UserError(f"{csv_name} is empty: nothing to show")
        classes = self.config["data"]["classes"]
        lookup = {c: i for i, c in enumerate(classes)}
        if "text" in rows[0]:  # a text run's table holds the questions themselves
            return plots.text_table([str(r["text"]) for r in rows], [lookup[str(r["true"])] for r in rows],
                                    [lookup[str(r["predicted"])] for r in rows], [r["confidence"] for r in rows],
                                    classes, title)
        root = RunDir(self.run_dir).data_root()
        task = get_task(self.config["task"])
        index = [r["index"] for r in rows]
        if hasattr(task, "test_images"):  # a task with its own data (the NumPy recipes)
            images = task.test_images(self.config, root)[index]
        else:
            data = build_data(saved_config(task, self.config), root, torch.device("cpu"), log=lambda m: None)
            images = split_images(data, "test", torch.tensor(index))
        return plots.image_grid(images, [lookup[str(r["true"])] for r in rows], [lookup[str(r["predicted"])] for r in rows],
                                [r["confidence"] for r in rows], classes, title)

    def plot_predictions(self):
        return self._grid("predictions.csv", "test predictions (red: mistakes)")

    def plot_mistakes(self):
        return self._grid("confident_mistakes.csv", "most confident mistakes")

    def forecast(self, steps: int = 24, data_dir: str | Path | None = None) -> dict:
        """A forecasting run's free-running forecast `steps` past the end of its series (also
        written to plots/forecast.png and .csv): {"forecast": [{"time", "forecast"}, ...], ...}."""
        run = RunDir(self.run_dir)
        return get_task(self.config["task"]).forecast(run, steps, run.data_root(data_dir))

    def generate(self, prompt: str = "", length: int = 500, temperature: float = 0.8, top_k: int = 0,
                 seed: int = 0) -> str:
        """A language-model run's continuation of `prompt` (as `deepstudy generate`)."""
        return get_task(self.config["task"]).generate(RunDir(self.run_dir), prompt, length, temperature, top_k, seed)

    def load_model(self, device="cpu"):
        """The trained model (the weights chosen on validation), in eval mode."""
        return get_task(self.config["task"]).load_model(RunDir(self.run_dir), device)[0]


def export(run_dir: str | Path, format: str | None = None, out: str | Path | None = None,
           data_dir: str | Path | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Export a finished run's model (`format` "onnx" or "torchscript"; "npz" for the NumPy
    recipes; default the first of these its kind offers) to `out` (default RUN_DIR/export/),
    checked against the model on batches of the run's own validation split.  Returns what
    FILE.json records: {"file", "max_abs_diff", "opset", "inputs", "versions", ...}."""
    from . import export as exporting
    return exporting.export(run_dir, format, out=out, data_dir=data_dir, log=log or (lambda m: None))


def load_run(path: str | Path) -> Result:
    run = RunDir.open(path)
    history = read_csv(run.history) if run.history.exists() else []
    metrics = run.read_metrics() if run.metrics.exists() else {}
    return Result(run.path, run.read_config(), metrics, history)


def _overrides(epochs, batch_size, lr, seed, device, threads, tensorboard, options) -> dict[str, Any]:
    out = dict(options or {})
    for key, value in (("train.epochs", epochs), ("train.batch_size", batch_size), ("optim.lr", lr),
                       ("train.seed", seed), ("train.device", device), ("train.threads", threads),
                       ("train.tensorboard", tensorboard)):
        if value is not None:
            out[key] = value
    return out


def run(recipe: str, *, tier: str | None = None, epochs: int | None = None, batch_size: int | None = None,
        lr: float | None = None, seed: int | None = None, device: str | None = None, threads: int | None = None,
        tensorboard: bool | None = None, options: dict[str, Any] | None = None, data_dir: str | Path | None = None, out: str | Path | None = None,
        resume: bool = False, progress: bool = True, show_summary: bool = False,
        log: Callable[[str], None] | None = None, command: list[str] | None = None,
        config_file: str | Path | None = None, meta: dict | None = None) -> Result:
    """Train a recipe and return its Result.  `options` takes dotted keys: {"model.hidden": (256, 128)};
    `config_file` a TOML (or YAML) file of them, which `options` and the keyword arguments override.
    tensorboard=True: event files in RUN_DIR/tensorboard/ (= train.tensorboard; the `tensorboard` extra)."""
    log = log or (lambda msg: print(msg, flush=True))
    meta = dict(meta or {})  # config.json entries beside the command line (the settings file, a replayed run)
    if config_file is not None:
        settings = read_settings_file(config_file)
        named = settings.pop("recipe", recipe)
        if named != recipe:
            raise ConfigError(f"--config {config_file} is for recipe {named!r}, not {recipe!r}")
        file_tier = settings.pop("tier", None)
        tier = tier or file_tier
        options = {**settings, **(options or {})}
        meta["config_file"] = str(Path(config_file).resolve())
    r = recipes.get_recipe(recipe)
    task = get_task(r.task)
    processes = distributed.requested()
    if processes > 1 and not task.distributed:
        raise ConfigError(f"{r.name} is a {task.name} recipe: it runs in one process; start it without torchrun")
    if resume and not task.resumable:
        raise ConfigError(f"{r.name} keeps no checkpoint, so there is nothing to resume (its runs take seconds to minutes); "
                          f"start it again without --resume")
    tier = tier or r.default_tier
    overrides = _overrides(epochs, batch_size, lr, seed, device, threads, tensorboard, options)

    # Every setting resolved and checked before a process group is joined, data read or a run
    # directory made: a refusal leaves nothing behind.
    saved = None
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out DIR: the run directory to continue")
        saved = RunDir.for_resume(out).read_config()
        if saved.get("recipe") != r.name:
            raise ConfigError(f"{out} holds a run of {saved.get('recipe')!r}, not {r.name!r}")
        tier = saved["tier"]
        # WHY through saved_config: an option added since the run was saved takes its own default
        # (what the code did before it existed), not the recipe's current value for it
        settings = _flat_saved(saved_config(task, saved).as_dict())
        cfg = resolve(r, tier, settings | overrides)
        changed = sorted(k for k, v in _flat(cfg).items() if settings.get(k) != v)
        bad = [k for k in changed if k not in RESUMABLE_CHANGES]
        if bad:
            raise ConfigError(f"cannot change {', '.join(bad)} when resuming; a resumed run keeps its settings")
        if RunDir(out).checkpoint.exists():
            load_checkpoint(RunDir(out).checkpoint)  # a damaged one is refused before any data is read
    else:
        cfg = resolve(r, tier, overrides)
    task.preflight(cfg)
    root = find_data_root(data_dir)  # a named root that does not exist is refused here
    if processes > cfg.train.batch_size:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} cannot be shared among {processes} processes: "
                          f"each needs at least one example of every batch")

    world = distributed.from_env()  # under torchrun: join the other processes
    if not world.main:
        log = _quiet  # one voice: process 0's
    # where, on how many threads and in what precision it runs, settled before a new run
    # directory is made, so a refusal leaves nothing behind
    dev = distributed.device_for(world, pick_device(cfg.train.device))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA device is available; use --device cpu")
    cfg, precision_note = _settle_precision(cfg, dev, resume)
    n_threads, threads_note = _settle_threads(cfg.train.threads, dev, saved, task.auto_threads)
    restart = resume and not RunDir(out).checkpoint.exists()
    if resume:
        run_dir = RunDir(out)
        if world.main:
            run_dir.remove_partial_writes()
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = out if out is not None else Path("runs") / f"{r.name}-{stamp}"
        # only process 0 creates and writes the run directory
        run_dir = RunDir.for_new_run(path) if world.main else RunDir(path)
    log(f"run directory: {run_dir.path}")
    for note in (precision_note, threads_note):
        if note:
            log(note)
    if restart:  # killed before its first checkpoint: nothing was kept, so epoch 1 again, same settings
        log("no checkpoint yet (the run stopped in its first epoch): starting it again with its saved settings")
        resume = False
    if resume and world.main and saved["config"]["train"]["precision"] != cfg.train.precision:
        # the rest of the run, and later evaluations, compute in the new precision: say so
        log(f"precision: {cfg.train.precision} from here on (the run began in "
            f"{saved['config']['train']['precision']})")
        saved["config"]["train"]["precision"] = cfg.train.precision
        write_json(run_dir.config, saved)
    if resume and world.main and saved["config"]["train"].get("tensorboard", False) != cfg.train.tensorboard:
        # config.json says whether the run logs to TensorBoard (the event files then hold every epoch:
        # train/tensorboard.py writes the checkpoint's epochs again)
        saved["config"]["train"]["tensorboard"] = cfg.train.tensorboard
        write_json(run_dir.config, saved)
    ctx = RunContext(recipe=r, tier=tier, cfg=cfg, run=run_dir, data_root=root, device=dev,
                     resume=resume, log=log, progress=progress, show_summary=show_summary,
                     meta={"command": command or sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "threads": n_threads, **meta},
                     world=world)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        metrics = runner.train(ctx)
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        if not resume and world.main:
            run_dir.discard_unfinished()
        asked = re.search(r"allocate (\d+) bytes", str(e))
        raise ConfigError(f"out of memory on {dev.type}" + (f" ({int(asked[1]) / 2**30:,.1f} GiB asked for at once)" if asked else "")
                          + ": the settings ask for more than this machine has; lower train.batch_size or the "
                          "model's sizes") from None
    except BaseException:
        if not resume and world.main:  # a failed new run leaves no half-made folder behind
            run_dir.discard_unfinished()
        raise
    finally:
        torch.set_num_threads(threads_before)  # a notebook's later work keeps its own setting
        distributed.finish(world)
    if not world.main:
        return Result(run_dir.path, {}, {}, [])
    return Result(run_dir.path, run_dir.read_config(), metrics, read_csv(run_dir.history) if run_dir.history.exists() else [])


def run_from(run_dir: str | Path, *, recipe: str | None = None, options: dict[str, Any] | None = None,
             **kwargs) -> Result:
    """Run again what the run in `run_dir` ran — its recipe, tier and every setting of its
    config.json, on as many CPU threads and from the same data root — into a new run directory.
    `options` and the keyword arguments of `run` change what they name.  On the same CPU with
    the same seed the metrics come out the same."""
    saved = RunDir.for_resume(run_dir).read_config()  # any run that wrote its config.json, finished or not
    if "recipe" not in saved or "config" not in saved:
        raise ConfigError(f"{run_dir}/config.json is not a deepstudy run's (no recipe or settings in it)")
    if recipe is not None and recipe != saved["recipe"]:
        raise ConfigError(f"--from {run_dir} holds a run of {saved['recipe']!r}, not {recipe!r}: leave the name out")
    replay = _flat_saved(saved["config"])
    if not replay.get("train.threads") and saved.get("threads"):
        replay["train.threads"] = saved["threads"]  # what auto chose then: sums split alike add up alike
    replay.update(options or {})
    root = saved.get("data_root")
    if kwargs.get("data_dir") is None and root and Path(root).is_dir():
        kwargs["data_dir"] = root
    kwargs["tier"] = kwargs.get("tier") or saved["tier"]
    kwargs["meta"] = {**(kwargs.get("meta") or {}), "replay_of": str(Path(run_dir).resolve())}
    return run(saved["recipe"], options=replay, **kwargs)


def _settle_precision(cfg, dev: torch.device, resume: bool):
    """train.precision=auto becomes bf16 or fp32 for this device (so config.json records what
    ran); bf16 asked for on a CPU that would only emulate it is refused.  Returns the settings
    and a line for the log, or ''."""
    if cfg.train.precision == "auto":
        cfg = cfg.replace(train={"precision": resolve_precision("auto", dev)})
        return cfg, (f"precision: {cfg.train.precision} (auto: "
                     f"{'native' if cfg.train.precision == 'bf16' else 'no native'} bf16 on this {dev.type})")
    if cfg.train.precision == "bf16" and not train_loop.native_bf16(dev):
        if dev.type == "cpu":  # WHY refuse: emulated bf16 measured 3-17x slower than fp32, and LSTMs fail in it
            raise ConfigError(
                "train.precision=bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX); emulated it runs several "
                "times slower than fp32 and oneDNN cannot run LSTMs in it. Use train.precision=auto or fp32"
                + (" (--resume accepts --set train.precision=fp32)" if resume else ""))
        return cfg, f"warning: train.precision=bf16 on a {dev.type} without native bf16 may be slower than fp32"
    return cfg, ""


def _settle_threads(threads: int, dev: torch.device, saved: dict | None, task_threads: int = 0) -> tuple[int, str]:
    """How many torch threads the run computes on, and a line for the log or ''.  train.threads=N
    takes N; 0 (auto) takes the cores that other work leaves free, or on --resume the count the
    run began with: a CPU's sums can depend on how they were split among threads, and a resumed
    run must end where the uninterrupted one would have."""
    if threads:
        return threads, ""
    if saved is not None and saved.get("threads"):
        return saved["threads"], ""
    if task_threads:  # what this kind of study runs best on (the tiny forecasters: one)
        return task_threads, ""
    if dev.type != "cpu":
        return torch.get_num_threads(), ""
    cores, busy = len(machine.allowed_cpus()), machine.busy_cores()
    n = machine.auto_threads(cores, busy)
    note = f"threads: {n} of {cores} cores, since other work keeps {busy:.1f} busy (--threads N to choose)"
    return n, note if n < cores else ""


def _out_of_memory(e: BaseException) -> bool:
    """An allocation that failed: a user's setting (a width, a batch) too big for this machine."""
    return isinstance(e, torch.OutOfMemoryError) or any(
        m in str(e) for m in ("can't allocate memory", "not enough memory", "out of memory"))


def _quiet(msg: str) -> None:
    pass


def _flat(cfg: dict) -> dict:
    from .config import flat
    return flat(cfg)


def _flat_saved(cfg: dict) -> dict:
    """A saved config.json has lists where the live config has tuples: compare like with like."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in _flat(cfg).items()}


def compare(run_dirs, plot: str | Path | None = None):
    """Finished runs side by side (report/compare.py: Comparison): `.text()`, `.markdown()`,
    `.csv()`, `.figure()` (the overlaid validation curves); a notebook shows it as a table.
    `run_dirs`: folders or globs.  `plot`: also write the curves to this PNG (`.plot` is its path)."""
    from .report.compare import compare as compare_runs
    from .report.plots import save
    comparison = compare_runs([run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs))
    if plot is not None:
        plot = Path(plot)
        if plot.is_dir() or not plot.parent.is_dir():
            raise UserError(f"--plot {plot}: " + ("is a folder; it takes the PNG file to write" if plot.is_dir()
                                                   else f"no folder {plot.parent}"))
        comparison.plot = save(comparison.figure(), plot)
    return comparison


def report(run_dirs, out: str | Path | None = None) -> Path:
    """Write the self-contained HTML report of one finished run (default RUN_DIR/report.html) or
    of a comparison of several (default ./report.html) and return its path."""
    from .report.html import report as write_report
    return write_report([run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs), out)
