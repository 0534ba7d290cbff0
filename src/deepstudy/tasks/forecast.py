"""Forecasting a univariate series: windows of the past in, the next value out, trained with
MSE by the same loop as the classifiers; the weights chosen on the validation period meet the
test period once.

Every number is in the series' own units (thousands of passengers), and every forecast is
shown beside two that need no learning, on the same targets: persistence (the last value) and
seasonal-naive (the value one season, 12 months, before).  A network that cannot beat them has
learned nothing worth having.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..config import RunConfig
from ..data.series import SeriesData
from ..errors import ConfigError, RunDirError
from ..io import write_csv
from ..models.summary import format_summary, summarize
from ..report import plots
from ..report.writers import write_curves
from ..rundir import RunDir
from ..train.checkpoint import load_weights
from ..train.loop import Paths, fit
from .base import Built, ExportSample, RunContext, Score, Section, Task, register_task, saved_config
from .build import build_data, build_model

# `deepstudy forecast --steps`: each step feeds the last forecast back, so errors compound; far
# past this a forecast says nothing, and takes minutes to make
MAX_STEPS = 10_000
FREE_RUN_SEASONS = 4  # free-running forecasts over the test period: at most this many seasons


def errors(actual: np.ndarray, predicted: np.ndarray) -> dict:
    e = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(e ** 2))), "mae": float(np.mean(np.abs(e))), "mse": float(np.mean(e ** 2)),
            "n": int(len(e))}


@torch.inference_mode()
def one_step(model: nn.Module, data: SeriesData, split: str, batch_size: int = 4096) -> np.ndarray:
    """Forecasts in original units for every target of a split, each from the true past."""
    model.eval()
    out = torch.cat([model(x) for x, _ in data.eval_batches(split, batch_size)])
    return data.decode(split, out)


def digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]


def noise_floor(data: SeriesData, split: str) -> dict:
    """For a synthetic series: the variance of the noise that was added to the sine on this
    split's targets, and the error of the best possible forecaster (see data/series.py)."""
    from ..data.series import best_possible_mse
    t = getattr(data, split).t
    added = data.values[t] - data.clean[t]
    n = data.noise
    return {"noise_floor": float(np.var(added)),
            "best_possible_mse": best_possible_mse(t, n["cycle"], n["factor"], n["kind"])}


def free_running(model: nn.Module, data: SeriesData) -> dict:
    """Forecast the first seasons of the test period from the end of the validation period
    without ever seeing a test value, beside the naive multi-step forecasts: the last value
    held, and the last observed season repeated."""
    start = data.bounds["test"]
    steps = min(len(data.values) - start, FREE_RUN_SEASONS * data.season)
    predicted = data.free_run(model, start, steps)
    actual = data.values[start:start + steps]
    last_season = data.values[start - data.season:start]
    naive = {"persistence": np.full(steps, data.values[start - 1]),
             "seasonal_naive": np.resize(last_season, steps)}
    return {"start": start, "steps": steps, "predicted": predicted, "actual": actual, "naive": naive,
            "metrics": {**errors(actual, predicted), "baselines": {k: errors(actual, v) for k, v in naive.items()}}}


@register_task
class Forecast(Task):
    name = "forecast"
    verbs = ("forecast",)
    metric = "rmse"
    # One CPU thread unless train.threads asks for more: these networks are tiny (5 to a few
    # thousand weights), so each op is microseconds of work and a second thread only adds
    # synchronisation (on a shared 2-core machine it made the clipping study far slower).
    auto_threads = 1

    def check(self, cfg: RunConfig) -> None:
        if cfg.train.monitor != "val_loss":
            raise ConfigError(f"train.monitor={cfg.train.monitor} needs class labels; a forecast monitors val_loss")
        if cfg.train.mixup:
            raise ConfigError(f"train.mixup={cfg.train.mixup:g}: mixup needs a classification task")

    def build(self, ctx: RunContext) -> Built:
        cfg = ctx.cfg
        data: SeriesData = build_data(cfg, ctx.data_root, ctx.device, ctx.log)
        model = build_model(cfg, data.in_shape, 1).to(ctx.device)
        info = summarize(model, data.in_shape, ctx.device)
        intro = (f"{ctx.recipe.name} ({ctx.tier} tier) on {ctx.device}: {len(data.train):,} training / "
                 f"{len(data.val):,} validation / {len(data.test):,} test windows of {data.look_back} steps from "
                 f"{data.source}; {info['trainable']:,} parameters")
        return Built(data, model, format_summary(info, f"{ctx.recipe.name}: {cfg.model.name} on {data.name}"), intro,
                     record={"data": {**data.info(), "values_sha256": digest(data.values)},
                             "model": {"trainable": info["trainable"], "non_trainable": info["non_trainable"]}})

    def fit(self, ctx: RunContext, built: Built):
        run = ctx.run
        return fit(built.model, built.data, ctx.cfg, Paths(run.checkpoint, run.weights, run.history),
                   resume=ctx.resume, log=ctx.log, progress=ctx.progress, criterion=nn.MSELoss(), world=ctx.world)

    def score(self, ctx: RunContext, built: Built, result) -> dict:
        # The weights chosen on validation meet the test period, once.
        model, data = built.model, built.data
        model.eval()
        predicted = {split: one_step(model, data, split) for split in ("train", "val", "test")}
        scores = {split: errors(data.actual(split), predicted[split]) for split in predicted}
        best = next(r for r in result.history if r["epoch"] == result.best_epoch)
        scores["val"]["loss"] = best["val_loss"]  # MSE of the scaled series, what selection used
        if data.clean is not None:
            scores["test"].update(noise_floor(data, "test"))
        free = free_running(model, data)
        built.outputs.update(predicted=predicted, free=free)
        return {"unit": data.unit, "val": scores["val"], "test": scores["test"],
                "baselines": {name: errors(data.actual("test"), f) for name, f in data.baselines("test").items()},
                "train": scores["train"],  # the seed reports its training-period fit too
                "val_baselines": {name: errors(data.actual("val"), f) for name, f in data.baselines("val").items()},
                "free_running": free["metrics"] | {"steps": free["steps"]}}

    def write_plots(self, ctx: RunContext, built: Built, result, metrics: dict) -> None:
        write_plots(ctx.run, result.history, built.data, built.outputs["predicted"], built.outputs["free"],
                    recipe=ctx.recipe.name, kept=result.best_epoch)

    def headline(self, recipe, metrics: dict) -> str:
        return headline(recipe, metrics)

    def metric_label(self, metric: str, metrics: dict) -> str:
        return metric.upper() + (f" ({metrics['unit']})" if metrics.get("unit") else "")

    def headline_score(self, recipe, metrics: dict, columns=()) -> Score:
        score = super().headline_score(recipe, metrics, columns)
        if score.curve == "val_loss":  # selection's loss is on the scaled series, not in the metric's units
            score = replace(score, curve_label="validation loss (MSE, scaled series)")
        return score

    def report_sections(self, saved: dict) -> list[Section]:
        return [Section("Learning curves", ("plots/curves.png",)),
                Section("One step ahead", ("plots/fit.png", "plots/predictions.png"),
                        note="each prediction from the true values before it"),
                Section("Free-running forecast", ("plots/free_running.png", "plots/forecast.png"),
                        note="each prediction fed back as the next input")]

    def load_model(self, run: RunDir, device="cpu"):
        saved = run.read_config()
        model = build_model(saved_config(self, saved), saved["data"]["in_shape"], 1).to(device)
        load_weights(run.weights, model, device)
        model.eval()
        return model, saved

    def evaluate(self, run: RunDir, split: str, data_root, device, log=print) -> dict:
        model, saved = self.load_model(run, device)
        data = self.load_data(saved, data_root, device, log)
        out = {"split": split, "unit": data.unit, **errors(data.actual(split), one_step(model, data, split)),
               "baselines": {k: errors(data.actual(split), f) for k, f in data.baselines(split).items()}}
        if data.clean is not None:
            out.update(noise_floor(data, split))
        return out

    def format_evaluation(self, recipe: str, out: dict) -> str:
        unit = f" {out['unit']}" if out.get("unit") else ""
        b = out["baselines"]
        return (f"{recipe} {out['split']}: RMSE {out['rmse']:.4g}  MAE {out['mae']:.4g}{unit}  MSE {out['mse']:.4g}  "
                f"({out['n']} steps)  |  persistence RMSE {b['persistence']['rmse']:.4g}  |  "
                f"seasonal-naive RMSE {b['seasonal_naive']['rmse']:.4g}"
                + (f"  |  noise floor (MSE) {out['noise_floor']:.4g}" if "noise_floor" in out else ""))

    def export_data(self, run: RunDir, saved: dict, data_root, log=print) -> SeriesData:
        return self.load_data(saved, data_root, "cpu", log)  # the very series it was trained on

    def export_sample(self, run: RunDir, data_root, log=print) -> ExportSample:
        sample = super().export_sample(run, data_root, log)
        # windows N x look_back x features in, the next value (scaled as in training) out
        return replace(sample, input_names=["window"], output_names=["next_value_scaled"])

    def load_data(self, saved: dict, data_root, device, log=lambda m: None) -> SeriesData:
        """The series a run was trained on, rebuilt from its config; refuses a file that changed."""
        cfg = saved_config(self, saved)
        source = saved["data"].get("source", "")
        if cfg.data.options.get("csv") and Path(source).is_file():
            cfg = cfg.replace(data={"csv": source})  # the path as resolved at training time, whatever the current folder
        data = build_data(cfg, data_root, device, log)
        if digest(data.values) != saved["data"].get("values_sha256"):
            raise RunDirError(f"the series in {data.source} is not the one this run was trained on (it changed)")
        return data

    def forecast(self, run: RunDir, steps: int, data_root, device="cpu", log=lambda m: None) -> dict:
        """Forecast `steps` values past the end of the series, each fed back as the next input.
        Writes plots/forecast.png with the history, and plots/forecast.csv beside it."""
        if not 1 <= steps <= MAX_STEPS:
            raise ConfigError(f"--steps must be between 1 and {MAX_STEPS:,}, got {steps:,}")
        model, saved = self.load_model(run, device)
        data = self.load_data(saved, data_root, device, log)
        n = len(data.values)
        with np.errstate(over="ignore", invalid="ignore"):  # a runaway forecast is reported below, once
            predicted = data.free_run(model, n, steps)
        labels = future_labels(data.times, steps)
        lo, hi = float(np.min(data.values)), float(np.max(data.values))
        margin = 10 * ((hi - lo) or abs(hi) or 1.0)
        plausible = np.isfinite(predicted) & (predicted >= lo - margin) & (predicted <= hi + margin)
        if not plausible.all():
            first = int(np.argmin(plausible))
            log(f"warning: from step {first + 1} ({labels[first]}) on, the forecast leaves any plausible range of "
                f"this series (it ran from {lo:.4g} to {hi:.4g}): a free-running forecast feeds its own errors back, "
                f"so trust only the steps before")
        rows = [{"step": n + i, "time": labels[i], "forecast": round(float(p), 4) if np.isfinite(p) else None}
                for i, p in enumerate(predicted)]
        shown = np.clip(np.where(np.isfinite(predicted), predicted, np.nan), lo - margin, hi + margin)
        plots.save(plots.forecast(list(data.times) + labels, data.values, n, shown, data.unit,
                                  f"{saved['recipe']}: {steps}-step forecast past the end of the series"),
                   run.plots / "forecast.png")
        write_csv(run.plots / "forecast.csv", rows, ["step", "time", "forecast"])
        return {"recipe": saved["recipe"], "unit": data.unit, "forecast": rows, "decimals": decimals_for(data.values),
                "plot": str(run.plots / "forecast.png"), "csv": str(run.plots / "forecast.csv")}


def decimals_for(values: np.ndarray) -> int:
    """Decimals that show a series' values to four significant digits, the same for every line."""
    scale = float(np.max(np.abs(values))) if len(values) else 1.0
    return max(0, 3 - int(np.floor(np.log10(scale)))) if scale > 0 else 4


def headline(recipe, metrics: dict) -> str:
    test, base, unit = metrics["test"], metrics["baselines"], metrics.get("unit", "")
    parts = [f"test RMSE {test['rmse']:.4g} MAE {test['mae']:.4g}" + (f" {unit}" if unit else "")
             + f" (MSE {test['mse']:.4g})",
             f"persistence RMSE {base['persistence']['rmse']:.4g}",
             f"seasonal-naive RMSE {base['seasonal_naive']['rmse']:.4g}"]
    if "noise_floor" in test:
        parts.append(f"noise floor (MSE) {test['noise_floor']:.4g}")
    if recipe.seed and recipe.seed.value is not None:
        parts.append(f"seed {recipe.metric.upper()} {recipe.seed.value:.4g}")
    return "  |  ".join(parts)


def write_plots(run: RunDir, history: list[dict], data: SeriesData, predicted: dict, free: dict, *,
                recipe: str = "", kept: int | None = None) -> None:
    d = run.plots
    write_curves(run, history, "training and validation (scaled series)", recipe=recipe, kept=kept,
                 loss_label="loss (MSE)")

    if data.clean is None:  # a real series: the whole of it, with every fit over it
        n = len(data.values)
        rows = [{"step": i, "time": data.times[i], "actual": float(data.values[i]), "period": "", "forecast": "",
                 "persistence": "", "seasonal_naive": ""} for i in range(n)]
        fits = {}
        for split in ("train", "val", "test"):
            t = getattr(data, split).t
            fits[f"{split} one-step forecast"] = (t, predicted[split])
            for i, p in zip(t, predicted[split]):
                rows[i].update(period=split, forecast=round(float(p), 4))
            for name, f in data.baselines(split).items():
                for i, p in zip(t, f):
                    rows[i][name] = "" if np.isnan(p) else float(p)
        test_t = data.test.t
        base = data.baselines("test")
        fits["test: persistence"] = (test_t, base["persistence"])
        fits["test: seasonal-naive"] = (test_t, base["seasonal_naive"])
        plots.save(plots.series_fit(data.times, data.values, fits, data.bounds, data.unit,
                                    "one-step-ahead forecasts (each from the true past) and the naive baselines"),
                   d / "fit.png")
        write_csv(d / "fit.csv", rows, list(rows[0]))

        s, k = free["start"], free["steps"]
        plots.save(plots.forecast(data.times, data.values[:s], s, free["predicted"], data.unit,
                                  f"free-running forecast of the test period ({k} steps, no test value seen)",
                                  actual_after=free["actual"]), d / "free_running.png")
        write_csv(d / "free_running.csv", [
            {"step": s + i, "time": data.times[s + i], "actual": float(free["actual"][i]),
             "forecast": round(float(free["predicted"][i]), 4),
             "persistence": float(free["naive"]["persistence"][i]),
             "seasonal_naive": float(free["naive"]["seasonal_naive"][i])} for i in range(k)])
    else:  # a synthetic sine: a few cycles of the test period, one-step and free-running
        s, k = free["start"], free["steps"]
        t = np.arange(s, s + k)
        one = predicted["test"][:k]
        plots.save(plots.sine_predictions(t, data.values[t], data.clean[t], one, free["predicted"],
                                          f"{k} steps at the start of the test period"), d / "predictions.png")
        write_csv(d / "predictions.csv", [
            {"step": int(i), "observed": float(data.values[i]), "clean": float(data.clean[i]),
             "one_step": round(float(o), 6), "free_running": round(float(f), 6)}
            for i, o, f in zip(t, one, free["predicted"])])


def future_labels(times: list[str], steps: int) -> list[str]:
    """Labels for the steps after the series: the next months after a YYYY-MM date, the next
    integers after a number, else +1, +2, ..."""
    last = times[-1] if times else ""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", last)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        out = []
        for _ in range(steps):
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            out.append(f"{year:04d}-{month:02d}")
        return out
    if last.isdigit():
        return [str(int(last) + k) for k in range(1, steps + 1)]
    return [f"+{k}" for k in range(1, steps + 1)]
