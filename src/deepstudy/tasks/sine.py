"""The noisy sine wave: a forecasting run (tasks/forecast.py) plus the gradient study, which
shows why the seed's plain RNN is limited to short windows and how LSTMs and clipping help.

Plots beside their numbers:
    plots/gradient_norms.png/.csv   ||dLoss/dh_t|| over one long stretch of the series
    plots/clipping.png/.json        an exploding RNN trained with and without gradient clipping
"""

from __future__ import annotations

from ..analysis.gradient_flow import clipping_study, gradient_study, growth_per_step
from ..io import write_csv, write_json
from ..report import plots
from .base import Built, RunContext, Section, register_task
from .forecast import Forecast

STUDY_STEPS = 300  # six cycles of the seed's 50-step sine: long enough to see geometric decay
# an RNN whose gradients explode, trained without and with clipping (see analysis/gradient_flow.py)
CLIPPING = {"look_back": 30, "steps": 150, "batch_size": 16, "gamma": 1.5, "lr": 0.1, "clip": 1.0, "hidden": 32}


@register_task
class SineStudy(Forecast):
    name = "sine"

    def write_plots(self, ctx: RunContext, built: Built, result, metrics: dict) -> None:
        super().write_plots(ctx, built, result, metrics)
        gradient_report(ctx, built.model, built.data, metrics)

    def report_sections(self, saved: dict) -> list[Section]:
        return super().report_sections(saved) + [
            Section("Gradients through time", ("plots/gradient_norms.png", "plots/clipping.png"),
                    note="why a plain RNN is limited to short windows, and what gates and clipping change")]


def gradient_report(ctx: RunContext, model, data, metrics: dict) -> None:
    d = ctx.run.plots
    series = data.values[:data.bounds["val"]]  # training period only
    steps = min(STUDY_STEPS, len(series) - 1)
    trained = (model.rnn, model.head) if data.in_shape[1] == 1 and hasattr(model, "rnn") else None
    norms = gradient_study(series[:steps], float(series[steps]), trained=trained, seed=ctx.cfg.train.seed)
    plots.save(plots.gradient_norms(norms, f"||dLoss/dh_t|| over {steps} steps of the sine (loss at the last step)"),
               d / "gradient_norms.png")
    write_csv(d / "gradient_norms.csv", [{"t": t + 1, **{k: float(v[t]) for k, v in norms.items()}}
                                         for t in range(steps)], ["t", *norms])

    runs = clipping_study(series, seed=ctx.cfg.train.seed, **CLIPPING)
    setting = (f"tanh RNN, {CLIPPING['hidden']} units, W_hh = {CLIPPING['gamma']:g} x orthogonal, plain SGD lr "
               f"{CLIPPING['lr']:g}, batch {CLIPPING['batch_size']}, windows of {CLIPPING['look_back']} steps")
    plots.save(plots.clipping(runs, CLIPPING["clip"], f"gradient clipping: {setting}"), d / "clipping.png")
    write_json(d / "clipping.json", {"setting": setting, **CLIPPING, "runs": runs})

    metrics["gradients"] = {
        name: {"first_step": float(v[0]), "last_step": float(v[-1]), "growth_per_step": growth_per_step(v)}
        for name, v in norms.items()}
    metrics["clipping"] = {name: {"steps": len(r["loss"]), "final_loss": r["loss"][-1],
                                  "diverged": r["loss"][-1] is None or r["grad_norm"][-1] is None,
                                  "max_finite_grad_norm": max((v for v in r["grad_norm"] if v is not None), default=None)}
                           for name, r in runs.items()}
