"""The NumPy recipes (deepstudy.scratch) in the same run directory as the PyTorch ones:
config.json, history.csv, metrics.json (the classification shape when there are classes;
loss, RMSE, MAE and the fitted line for linear regression), model.safetensors (the NumPy
arrays), summary.txt and plots/.

The networks train in NumPy only.  torch appears here just for what both kinds of recipe share:
the classification report (torchmetrics) and reading a user's image file for `predict`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import torch
from safetensors import SafetensorError
from threadpoolctl import threadpool_limits

from ..config import RunConfig, ScheduleConfig, TrainConfig
from ..errors import ConfigError, RunDirError, UserError
from ..io import write_csv, write_json
from ..machine import hardware
from ..report import plots
from ..report.writers import write_class_distribution, write_confusion, write_curves, write_prediction_grids
from ..rundir import RunDir
from ..scratch.data import REGRESSION, ArrayData, PixelScaler, Source, Standardizer, dataset_options, load_dataset
from ..scratch.layers import Sequential
from ..scratch.losses import SoftmaxCrossEntropy
from ..scratch.models import create_model, model_options
from ..scratch.optim import make_optimizer
from ..scratch.train import evaluate as evaluate_split, fit, load_params, loss_for, outputs, scores
from ..train.metrics import classification_report
from .base import (EXPORT_BATCH, EXPORT_SPLIT, Built, ExportSample, RunContext, Section, Task, predict_each,
                   register_task, saved_config, shown)

# NumPy's BLAS (OpenBLAS) threads spin while they wait for work.  On a busy 2-core machine that
# spinning fights the other processes for the cores and a 100x784 @ 784x10 product takes 17 ms
# instead of 0.06 ms.  The matrices of these networks are small (a batch of 100 rows), so one
# thread loses little when the machine is idle and avoids the collapse when it is not.
# benchmarks/scratch_mnist.py measures both.
BLAS_THREADS = 1

# The options of the shared train/schedule sections that the NumPy loop implements; any other
# option set away from its default is refused rather than silently ignored.
SUPPORTED = {"train": {"epochs", "batch_size", "eval_batch_size", "seed", "early_stop", "monitor", "device",
                       "max_minutes", "threads"},
             "schedule": {"name", "min_lr"}}


def _check_supported(cfg: RunConfig) -> None:
    if cfg.train.tensorboard:  # WHY not supported: the event files come through torch, which scratch/ never imports
        raise ConfigError("train.tensorboard: the NumPy recipes write no TensorBoard events (they run without torch); "
                          "their curves are in plots/curves.png and history.csv")
    for section, cls in (("train", TrainConfig), ("schedule", ScheduleConfig)):
        values = getattr(cfg, section)
        for f in dataclasses.fields(cls):
            if f.name not in SUPPORTED[section] and getattr(values, f.name) != f.default:
                raise ConfigError(f"the NumPy trainer does not implement {section}.{f.name} "
                                  f"(the PyTorch recipes do); leave it at {f.default!r}")
    if cfg.schedule.name not in ("none", "cosine"):
        raise ConfigError(f"the NumPy trainer has schedule.name none or cosine, not {cfg.schedule.name!r}")


def _rng(seed: int, purpose: int) -> np.random.Generator:
    """Independent, reproducible random streams from one seed: 1 initial weights, 2 batch order
    (the data builders use the seed itself for generating and splitting)."""
    return np.random.default_rng([seed, purpose])


def build_data(cfg: RunConfig, data_root, log=print) -> ArrayData:
    return load_dataset(cfg.data.name, Source(data_root, cfg.train.seed, log), **cfg.data.options)


def build_model(cfg: RunConfig, in_features: int, outputs_: int) -> Sequential:
    return create_model(cfg.model.name, in_features, outputs_, _rng(cfg.train.seed, 1), **cfg.model.options)


def summary(model: Sequential, in_features: int, title: str) -> str:
    lines = [title, f"{'layer':<16}{'output':>10}{'parameters':>14}"]
    width = in_features
    for layer in model.layers:
        n = sum(p.size for p in layer.params.values())
        if "W" in layer.params:
            width = layer.params["W"].shape[1]
        lines.append(f"{layer!r:<16}{width:>10}{n:>14,}")
    lines.append(f"trainable parameters: {model.num_params():,} ({model.dtype})")
    return "\n".join(lines)


def fitted_line(model: Sequential, data: ArrayData) -> tuple[float, float]:
    """The learned line in the data's own units: the network computes y = w'·(x − mean)/std + b',
    so w = w'/std and b = b' − w'·mean/std."""
    scale: Standardizer = data.encode
    w_std, b_std = float(model.layers[0].W[0, 0]), float(model.layers[0].b[0])
    mean, std = float(scale.mean[0]), float(scale.std[0])
    return w_std / std, b_std - w_std * mean / std


def _is_line(model: Sequential, data: ArrayData) -> bool:
    return not data.is_classification and data.in_features == 1 and len(model.layers) == 1


@register_task
class Scratch(Task):
    """The networks train in NumPy only (scratch/train.py, the same contract as train/driver.py:
    best epoch on validation, early stopping, time budget, history.csv, model.safetensors)."""

    name = "scratch"
    distributed = False  # one NumPy process: torchrun has nothing to share out
    resumable = False  # NumPy runs take seconds to minutes and keep no checkpoint
    export_formats = ("npz",)  # NumPy arrays: what a NumPy network is made of

    def option_lookups(self):
        return dataset_options, model_options

    def check(self, cfg: RunConfig) -> None:
        _check_supported(cfg)
        if cfg.data.name in REGRESSION and cfg.train.monitor == "val_accuracy":
            raise ConfigError(f"{cfg.data.name} has a number to predict, not classes: set train.monitor=val_loss")

    def build(self, ctx: RunContext) -> Built:
        cfg, recipe = ctx.cfg, ctx.recipe
        data = build_data(cfg, ctx.data_root, ctx.log)
        model = build_model(cfg, data.in_features, data.outputs)
        if ctx.device.type != "cpu":
            ctx.log(f"NumPy computes on the CPU; {ctx.device} is not used")
        sizes = " / ".join(f"{data.size(s):,} {s}" for s in ("train", "val", "test"))
        intro = (f"{recipe.name} ({ctx.tier} tier), NumPy on the CPU: {sizes} examples from {data.source}; "
                 f"{model!r}, {model.num_params():,} parameters")
        return Built(data, model, summary(model, data.in_features, f"{recipe.name}: {cfg.model.name} on {data.name} (NumPy)"),
                     intro, record={
                         "data": data.info(),
                         "model": {"trainable": model.num_params(), "non_trainable": 0, "in_features": data.in_features,
                                   "outputs": data.outputs, "layers": repr(model), "dtype": str(model.dtype)},
                         "device": "cpu", "hardware": hardware(blas_threads(cfg), device="cpu")})

    def fit(self, ctx: RunContext, built: Built):
        t, model, data = ctx.cfg.train, built.model, built.data
        with threadpool_limits(limits=blas_threads(ctx.cfg), user_api="blas"):
            result = fit(model, loss_for(data), make_optimizer(ctx.cfg.optim), data, epochs=t.epochs,
                         batch_size=t.batch_size, rng=_rng(t.seed, 2), eval_batch_size=t.eval_batch_size,
                         schedule=ctx.cfg.schedule.name, min_lr=ctx.cfg.schedule.min_lr, monitor=t.monitor,
                         early_stop=t.early_stop, max_minutes=t.max_minutes, weights_path=ctx.run.weights,
                         history_path=ctx.run.history, log=ctx.log, log_every=1 if t.epochs <= 30 else t.epochs // 10,
                         describe=(lambda: "w={:.4f} b={:.4f}".format(*fitted_line(model, data)))
                         if _is_line(model, data) else None)
        model.load(result.best_params)  # the weights chosen on validation
        return result

    def score(self, ctx: RunContext, built: Built, result) -> dict:
        # The weights chosen on validation meet the test set, once.
        t, model, data = ctx.cfg.train, built.model, built.data
        with threadpool_limits(limits=blas_threads(ctx.cfg), user_api="blas"):
            val = evaluate_split(model, data, "val", t.eval_batch_size)
            test_out = outputs(model, data, "test", t.eval_batch_size)
        built.outputs["test_out"] = test_out
        if data.is_classification:
            report = classification_report(torch.from_numpy(test_out), torch.from_numpy(data.test.y), data.classes)
            built.outputs["report"] = report
            return {"val": {"accuracy": val["accuracy"], "loss": val["loss"]},
                    "test": {"accuracy": report["accuracy"], "loss": report["loss"], "per_class": report["per_class"]}}
        metrics = {"val": val, "test": scores(test_out, data.test.y, False)}
        if _is_line(model, data):
            w, b = fitted_line(model, data)
            metrics["fitted"] = {"w": w, "b": b}
            if "true_w" in data.description:
                metrics["true"] = {"w": data.description["true_w"], "b": data.description["true_b"]}
        return metrics

    def write_plots(self, ctx: RunContext, built: Built, result, metrics: dict) -> None:
        write_plots(ctx.run, result.history, built.model, built.data, built.outputs["test_out"],
                    built.outputs.get("report"), recipe=ctx.recipe.name, kept=result.best_epoch)

    def headline(self, recipe, metrics: dict) -> str:
        return headline(recipe, metrics)

    def report_sections(self, saved: dict) -> list[Section]:
        # a classifier's sections (missing plots are left out for a regression), and the fit itself
        from .classification import classification_sections
        curves, *rest = classification_sections(saved)
        return [curves, Section("The fitted model", ("plots/fit.png", "plots/decision_boundary.png")), *rest]

    def load_model(self, run: RunDir, device="cpu"):
        """The NumPy network of a finished run, with the weights chosen on validation."""
        saved = run.read_config()
        model = build_model(saved_config(self, saved), saved["model"]["in_features"], saved["model"]["outputs"])
        try:
            model.load(load_params(run.weights))
        except (SafetensorError, OSError) as e:
            raise RunDirError(f"weights file {run.weights} is damaged or unreadable ({e})") from None
        except ValueError as e:
            raise RunDirError(f"weights in {run.weights} do not fit the model its config describes ({e})") from None
        return model, saved

    def evaluate(self, run: RunDir, split: str, data_root, device="cpu", log=print) -> dict:
        model, saved = self.load_model(run)
        cfg = saved_config(self, saved)
        data = build_data(cfg, data_root, log)
        with threadpool_limits(limits=blas_threads(cfg), user_api="blas"):
            out = outputs(model, data, split, cfg.train.eval_batch_size)
        part = getattr(data, split)
        result = {"split": split, "count": len(part), "unit": "images" if "in_shape" in data.description else "examples"}
        if data.is_classification:
            report = classification_report(torch.from_numpy(out), torch.from_numpy(part.y), data.classes)
            return result | {"accuracy": report["accuracy"], "loss": report["loss"], "per_class": report["per_class"]}
        return result | scores(out, part.y, False)

    def predict(self, run: RunDir, inputs: list[str], device="cpu", top: int = 3) -> list[dict]:
        """Images for the MNIST recipes; numbers for the others: a temperature in degrees Celsius
        ("36.6") for scratch-linreg, a point ("0.5,-0.25") for scratch-mlp-toy."""
        model, saved = self.load_model(run)
        info = saved["data"]
        encode = _encoder(info)
        if "in_shape" in info:
            from ..data.images import load_image

            def read(path):
                return load_image(path, info["in_shape"], info.get("preprocess", "fit")).numpy()
        elif info["classes"] is None:
            def read(text):
                return _numbers(text, 1, f"a number ({info.get('input', 'the input')}), e.g. 36.6")
        else:
            def read(text):
                return _numbers(text, 2, "a point x,y such as 0.5,-0.25 (put -- before points that start with a minus)")

        def infer(rows: list[np.ndarray], names: list[str]) -> list[dict]:
            out = model.forward(encode(np.stack(rows), model.dtype))
            if info["classes"] is None:
                unit = info.get("target", "")
                return [{"file": f, "value": round(float(v), 6), "unit": unit} for f, v in zip(names, out[:, 0])]
            probs = SoftmaxCrossEntropy.probabilities(out.astype(np.float64))
            k = min(top, probs.shape[1])
            order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
            return [{"file": f, "top": [{"class": info["classes"][i], "probability": round(float(probs[n, i]), 6)}
                                        for i in order[n]]} for n, f in enumerate(names)]

        return predict_each(inputs, "file", read, infer)

    def export_sample(self, run: RunDir, data_root, log=print) -> ExportSample:
        """The NumPy network and encoded inputs of the validation split (.npz: the weights, and
        the input encoding beside them, since the network never sees raw pixels or degrees)."""
        model, saved = self.load_model(run)
        data = build_data(saved_config(self, saved), data_root, log)
        batches = [x for x, _ in itertools.islice(data.batches(EXPORT_SPLIT, EXPORT_BATCH, model.dtype), 2)]
        batches.append(next(data.batches(EXPORT_SPLIT, 1, model.dtype))[0])
        return ExportSample(model, [(x,) for x in batches], ["input"], ["output"], [{0: "batch"}],
                            f"{EXPORT_SPLIT} split: {' + '.join(str(len(x)) for x in batches)} inputs, encoded",
                            extras={"input_mean": np.asarray(data.encode.mean, np.float64),
                                    "input_std": np.asarray(data.encode.std, np.float64)})

    def test_images(self, saved: dict, data_root) -> np.ndarray:
        """The test images of an image run (N x C x H x W uint8), for Result.plot_predictions."""
        data = build_data(saved_config(self, saved), data_root, log=lambda m: None)
        return data.test.x.reshape(len(data.test), *data.description["in_shape"])


def blas_threads(cfg: RunConfig) -> int:
    return cfg.train.threads or BLAS_THREADS


def headline(recipe, metrics: dict) -> str:
    if "accuracy" in metrics["test"]:
        from .classification import headline as classification_headline
        return classification_headline(recipe, metrics)
    text = f"test RMSE {metrics['test']['rmse']:.4g}, MAE {metrics['test']['mae']:.4g}"
    if "fitted" in metrics:
        f = metrics["fitted"]
        text += f"  |  fitted F = {f['w']:.4f}*C + {f['b']:.4f}"
        if "true" in metrics:
            text += f"  |  true F = {metrics['true']['w']}*C + {metrics['true']['b']}"
    return text


# ------------------------------------------------------------------ plots

def write_plots(run: RunDir, history: list[dict], model: Sequential, data: ArrayData, test_out: np.ndarray,
                report: dict | None, *, recipe: str = "", kept: int | None = None) -> None:
    if not data.is_classification:
        write_curves(run, history, "gradient descent", recipe=recipe, kept=kept, loss_label="loss (mean squared error)",
                     log_loss=True)
        if _is_line(model, data):
            _write_line(run, model, data, test_out)
        return
    write_curves(run, history, recipe=recipe, kept=kept)
    write_confusion(run, report["confusion_matrix"], data.classes)
    counts = {s: np.bincount(getattr(data, s).y, minlength=len(data.classes)).tolist() for s in ("train", "val", "test")}
    write_class_distribution(run, counts, data.classes)
    probs = SoftmaxCrossEntropy.probabilities(test_out.astype(np.float64))
    if "in_shape" in data.description:  # images
        images = data.test.x.reshape(len(data.test), *data.description["in_shape"])
        write_prediction_grids(run, probs, data.test.y, images, data.classes)
    elif data.in_features == 2:
        _write_boundary(run, model, data, probs)


def _write_line(run: RunDir, model: Sequential, data: ArrayData, test_out: np.ndarray) -> None:
    w, b = fitted_line(model, data)
    xs = np.concatenate([getattr(data, s).x[:, 0] for s in ("train", "val", "test")])
    line_x = np.array([xs.min(), xs.max()])
    truth = None
    if "true_w" in data.description:
        truth = (line_x, data.description["true_w"] * line_x + data.description["true_b"])
    points = {s if s != "val" else "validation": (getattr(data, s).x[:, 0], getattr(data, s).y)
              for s in ("train", "val", "test")}
    fig = plots.fitted_line(points, line_x, w * line_x + b, f"fitted: y = {w:.4f}·x + {b:.4f}",
                            data.description.get("input", "x"), data.description.get("target", "y"),
                            "data and the fitted line", truth)
    plots.save(fig, run.plots / "fit.png")
    rows = [{"split": s, "x": float(x), "y": float(y), "predicted": float(w * x + b)}
            for s in ("train", "val", "test") for x, y in zip(getattr(data, s).x[:, 0], getattr(data, s).y)]
    write_csv(run.plots / "fit.csv", rows, ["split", "x", "y", "predicted"])


def _write_boundary(run: RunDir, model: Sequential, data: ArrayData, probs: np.ndarray, steps: int = 101) -> None:
    everything = np.concatenate([data.train.x, data.val.x, data.test.x])
    low, high = everything.min(0), everything.max(0)
    pad = 0.1 * (high - low)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], steps)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], steps)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    prob = SoftmaxCrossEntropy.probabilities(model.forward(data.encode(grid, model.dtype)).astype(np.float64))
    prob = prob[:, 1].reshape(steps, steps)
    fig = plots.decision_boundary(xs, ys, prob, data.test.x, data.test.y, data.classes,
                                  f"{data.name}: decision boundary and the test points")
    plots.save(fig, run.plots / "decision_boundary.png")
    write_json(run.plots / "decision_boundary.json", {
        "x": np.round(xs, 5).tolist(), "y": np.round(ys, 5).tolist(), "classes": data.classes,
        "probability_of": data.classes[1], "probability": np.round(prob, 4).tolist()})
    write_csv(run.plots / "test_points.csv",
              [{"x": float(p[0]), "y": float(p[1]), "true": data.classes[t], "predicted": data.classes[k],
                "confidence": round(float(q.max()), 6)}
               for p, t, k, q in zip(data.test.x, data.test.y, probs.argmax(1), probs)],
              ["x", "y", "true", "predicted", "confidence"])


def _encoder(info: dict):
    if "in_shape" in info:
        return PixelScaler(info["mean"][0], info["std"][0])
    return Standardizer(info["x_mean"], info["x_std"])


def _numbers(text: str, count: int, what: str) -> np.ndarray:
    """One input of `count` comma-separated finite numbers."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise UserError(f"{shown(text)!r} is not {what}")
    return np.array(values)
