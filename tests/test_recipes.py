"""Every recipe in its smoke tier (pytorch/examples' --dry-run idea): the whole path from data
to report runs, on a small real subset.  Plus one short real-data run that proves learning."""

import json

import pytest

from deepstudy import api
from deepstudy.recipes import list_recipes

ALL = [r.name for r in list_recipes()]


def quiet(msg):
    pass


@pytest.mark.parametrize("name", ALL)
def test_smoke_tier(name, data_root, tmp_path):
    r = api.run(name, tier="smoke", data_dir=data_root, out=tmp_path / "run", progress=False, log=quiet)
    m = json.loads((r.run_dir / "metrics.json").read_text())
    assert m["recipe"] == name and m["tier"] == "smoke"
    assert set(m["val"]) == {"accuracy", "loss"} and {"accuracy", "loss", "per_class"} <= set(m["test"])
    assert len(m["test"]["per_class"]) == 10
    # one epoch on 2,000 images: far from the quick tier's numbers, but clearly learning
    assert m["test"]["accuracy"] > 0.2, f"{name}: {m['test']['accuracy']:.3f} is near chance (0.1)"
    assert r.history[0]["train_loss"] > 0 and (r.run_dir / "plots" / "curves.png").exists()


def test_lenet5_learns_real_mnist_in_one_epoch(tmp_path):
    r = api.run("lenet5-mnist", epochs=1, out=tmp_path / "run", progress=False, log=quiet)
    assert r.metrics["test"]["accuracy"] > 0.95  # one epoch of the cosine schedule: ~96.5%
