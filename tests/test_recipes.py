"""Every recipe in its smoke tier (pytorch/examples' --dry-run idea): the whole path from data
to report runs, on a small real subset.  Plus one short real-data run that proves learning."""

import json
import math

import pytest

from conftest import HANDMADE_DATASETS, make_handmade_root, real_data_present, shared_or_skip
from deepstudy import api
from deepstudy.recipes import get_recipe, list_recipes

ALL = [r.name for r in list_recipes()]


def quiet(msg):
    pass


def check_classification(r, m):
    classes = r.config["data"]["classes"]
    assert set(m["val"]) == {"accuracy", "loss"} and {"accuracy", "loss", "per_class"} <= set(m["test"])
    assert list(m["test"]["per_class"]) == classes
    # a smoke tier is far from the quick tier's numbers, but clearly learning
    chance = 1 / len(classes)
    assert m["test"]["accuracy"] > chance + 0.1, f"{m['recipe']}: {m['test']['accuracy']:.3f} is near chance ({chance:.2f})"


def check_forecast(r, m):
    # a few epochs: the numbers mean nothing yet; the shape and the baselines beside them do
    for split in ("val", "test"):
        assert {"rmse", "mae", "mse"} <= set(m[split]) and m[split]["rmse"] >= 0
    assert set(m["baselines"]) == {"persistence", "seasonal_naive"}
    assert all({"rmse", "mae", "mse"} <= set(b) for b in m["baselines"].values())


def check_scratch(r, m):
    if "accuracy" in m["test"]:  # the NumPy classifiers keep the classification shape
        return check_classification(r, m)
    # a number to predict (scratch-linreg): the loss fell by orders of magnitude
    assert {"loss", "rmse", "mae"} <= set(m["test"]) and math.isfinite(m["test"]["rmse"])
    assert r.history[-1]["train_loss"] < r.history[0]["train_loss"] / 100


def check_language_model(r, m):
    assert set(m["val"]) == {"loss", "bpc"} and set(m["test"]) == {"loss", "bpc"}
    uniform = math.log(r.config["data"]["vocab_size"])  # nats per character of a uniform guess
    assert m["val"]["loss"] < 0.8 * uniform, f"validation loss {m['val']['loss']:.3f} is near uniform ({uniform:.2f})"
    assert m["val"]["bpc"] == pytest.approx(m["val"]["loss"] / math.log(2))
    assert (r.run_dir / "samples.txt").stat().st_size > 4 * 500


def check_transfer(r, m):
    # cats vs dogs from 160 images, random weights, one epoch: no accuracy bar, the shape of a
    # classification run plus what each stage did
    assert set(m["val"]) == {"accuracy", "loss"} and {"accuracy", "loss", "per_class"} <= set(m["test"])
    assert list(m["test"]["per_class"]) == r.config["data"]["classes"]
    assert m["transfer"]["mode"] == r.config["config"]["transfer"]["mode"] and m["transfer"]["stages"]
    assert r.history[0]["train_loss"] > 0 and (r.run_dir / "plots" / "curves.png").exists()


CHECKS = {"classification": check_classification, "forecast": check_forecast, "sine": check_forecast,
          "scratch": check_scratch, "transfer": check_transfer, "language_model": check_language_model}


# Each recipe once, on the real data when ../shared is present, else on the tests' hand-made
# copies (so a user's clone still runs every recipe); and one recipe per dataset a clone lacks
# once more on the hand-made copy, so CI (which has ../shared) also checks the fallback.
# WHY not every recipe twice: the hand-made data proves the data path, which is the dataset's,
# not the model's; the second run of ~30 recipes cost minutes of CI.
ALL_HANDMADE = [n for n in ALL if get_recipe(n).dataset in HANDMADE_DATASETS]
ONE_PER_DATASET = sorted({get_recipe(n).dataset: n for n in reversed(ALL_HANDMADE)}.values())
CASES = [(n, "data") for n in ALL] + [(n, "hand-made") for n in ONE_PER_DATASET]


@pytest.mark.parametrize("name,source", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_smoke_tier(name, source, tmp_path):
    if get_recipe(name).dataset not in HANDMADE_DATASETS:
        root = None  # the package's MNIST and airline series, or generated data: the same on any machine
    elif source == "data" and real_data_present():
        root = shared_or_skip()
    elif source == "hand-made" and not real_data_present():
        pytest.skip("no real data here: this recipe's case above already ran on the hand-made copy")
    else:
        root = make_handmade_root(tmp_path)
    r = api.run(name, tier="smoke", data_dir=root, out=tmp_path / "run", progress=False, log=quiet)
    m = json.loads((r.run_dir / "metrics.json").read_text())
    assert m["recipe"] == name and m["tier"] == "smoke"
    assert r.history[0]["train_loss"] > 0 and (r.run_dir / "plots" / "curves.png").exists()
    CHECKS[get_recipe(name).task](r, m)


def test_one_hand_made_case_per_dataset():
    # the fallback check covers every dataset a clone lacks, whatever recipes come and go
    assert {get_recipe(n).dataset for n in ONE_PER_DATASET} == {get_recipe(n).dataset for n in ALL_HANDMADE}


def test_lenet5_learns_real_mnist_in_one_epoch(tmp_path):
    r = api.run("lenet5-mnist", epochs=1, out=tmp_path / "run", progress=False, log=quiet)
    assert r.metrics["test"]["accuracy"] > 0.95  # one epoch of the cosine schedule: ~96.5%
