"""A new kind of study is one file: this one registers a toy kind ("line": fit y = a*x + b to
noisy points with a one-weight network) through the public Task interface alone, and runs it
through `deepstudy run`, `eval` and `predict` like any built-in study."""

import json
import math

import pytest
import torch
import torch.nn as nn

from deepstudy.cli import main
from deepstudy.config import builder_options
from deepstudy.errors import UserError
from deepstudy.recipes import RECIPES, Recipe, register_recipe
from deepstudy.tasks import TASKS, Built, Task, register_task, saved_config
from deepstudy.train.checkpoint import load_weights
from deepstudy.train.driver import Objective, Paths, run_epochs


def points(seed: int = 0, *, n: int = 200, noise: float = 0.1, slope: float = 3.0, intercept: float = 1.0):
    """n points of the line plus noise, split 60/20/20."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 2 - 1
    y = slope * x + intercept + noise * torch.randn(n, 1, generator=g)
    cut = [0, int(0.6 * n), int(0.8 * n), n]
    return {s: (x[a:b], y[a:b]) for s, a, b in zip(("train", "val", "test"), cut, cut[1:])}


def line_model(*, bias: bool = True) -> nn.Module:
    return nn.Linear(1, 1, bias=bias)


class LineObjective(Objective):
    history_fields = ["epoch", "train_loss", "val_loss", "lr", "seconds"]

    def __init__(self, splits):
        self.splits = splits

    def steps_per_epoch(self, batch_size):
        return math.ceil(len(self.splits["train"][0]) / batch_size)

    def batches(self, batch_size, generator):
        x, y = self.splits["train"]
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            yield x[order[i:i + batch_size]], y[order[i:i + batch_size]]

    def loss(self, net, batch, generator):
        x, y = batch
        loss = nn.functional.mse_loss(net(x), y)
        return loss, {"loss": loss.detach() * len(y), "count": len(y)}

    def train_scores(self, sums, seconds):
        return {"train_loss": sums["loss"].item() / int(sums["count"])}

    def validate(self, model):
        x, y = self.splits["val"]
        with torch.no_grad():
            return {"val_loss": nn.functional.mse_loss(model(x), y).item()}

    def describe(self, row):
        return f"train mse {row['train_loss']:.4f}  val mse {row['val_loss']:.4f}"


class Line(Task):
    name = "toy_line"

    def option_lookups(self):
        return (lambda name: builder_options(points)), (lambda name: builder_options(line_model))

    def build(self, ctx):
        splits = points(ctx.cfg.train.seed, **ctx.cfg.data.options)
        splits_info = type("Splits", (), {"name": "points", "source": "generated", "splits": splits})()
        return Built(splits_info, line_model(**ctx.cfg.model.options), "Linear(1, 1)", "fitting a line",
                     record={"data": {"name": "points"}})

    def fit(self, ctx, built):
        run = ctx.run
        return run_epochs(built.model, LineObjective(built.data.splits), ctx.cfg.train, ctx.cfg.optim,
                          ctx.cfg.schedule, Paths(run.checkpoint, run.weights, run.history), resume=ctx.resume,
                          log=ctx.log, progress=False, world=ctx.world)

    def score(self, ctx, built, result):
        x, y = built.data.splits["test"]
        with torch.no_grad():
            mse = nn.functional.mse_loss(built.model(x), y).item()
        return {"val": {"loss": min(r["val_loss"] for r in result.history)}, "test": {"loss": mse},
                "fitted": {"slope": built.model.weight.item(), "intercept": built.model.bias.item()}}

    def headline(self, recipe, metrics):
        return f"test mse {metrics['test']['loss']:.4f}"

    def load_model(self, run, device="cpu"):
        saved = run.read_config()
        model = line_model(**saved_config(self, saved).model.options)
        load_weights(run.weights, model)
        return model.eval(), saved

    def evaluate(self, run, split, data_root, device, log=print):
        model, saved = self.load_model(run)
        cfg = saved_config(self, saved)
        x, y = points(cfg.train.seed, **cfg.data.options)[split]
        with torch.no_grad():
            return {"split": split, "count": len(x), "unit": "points", "loss": nn.functional.mse_loss(model(x), y).item()}

    def predict(self, run, inputs, device="cpu", top=3):
        model, _ = self.load_model(run)
        try:
            x = torch.tensor([[float(v)] for v in inputs])
        except ValueError:
            raise UserError(f"{inputs} are not all numbers") from None
        with torch.no_grad():
            return [{"file": v, "value": float(p)} for v, p in zip(inputs, model(x)[:, 0])]


@pytest.fixture
def toy_study():
    register_task(Line)
    register_recipe(Recipe(name="toy-line", study="Toy", description="a line through noisy points", task="toy_line",
                           config={"data": {"name": "points", "noise": 0.05}, "model": {"name": "line"},
                                   "optim": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 30, "batch_size": 20,
                                                                                    "monitor": "val_loss"}}))
    yield
    RECIPES.remove("toy-line")
    TASKS.remove("toy_line")


def test_a_new_kind_of_study_runs_through_every_command(toy_study, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "toy-line", "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "toy_line" and metrics["epochs_run"] == 30
    assert metrics["fitted"]["slope"] == pytest.approx(3.0, abs=0.1)
    assert metrics["fitted"]["intercept"] == pytest.approx(1.0, abs=0.1)
    assert metrics["test"]["loss"] < 0.01  # the noise's variance is 0.0025
    assert (out / "plots" / "curves.png").stat().st_size > 1000  # the default plots of a Task
    assert (out / "checkpoint.pt").is_file() and len((out / "history.csv").read_text().splitlines()) == 31
    capsys.readouterr()

    assert main(["eval", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("toy-line test: loss ") and "(40 points)" in line
    assert float(line.split("loss ")[1].split()[0]) == pytest.approx(metrics["test"]["loss"], abs=1e-4)

    assert main(["predict", str(out), "0.5", "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["value"]
    assert predicted == pytest.approx(3.0 * 0.5 + 1.0, abs=0.1)
    assert main(["generate", str(out)]) == 2  # a verb this kind does not offer: one line
    assert "toy_line run; generate needs a language model" in capsys.readouterr().err

    # the epoch driver's resume works for it too: a finished run says so and keeps its numbers
    assert main(["run", "toy-line", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert json.loads((out / "metrics.json").read_text())["test"] == metrics["test"]
