"""Typed options: coercion, unknown keys, tiers and overrides."""

from typing import Literal, Optional

import pytest

from deepstudy import recipes
from deepstudy.config import coerce, parse_assignments
from deepstudy.errors import ConfigError


@pytest.mark.parametrize("value, tp, expected", [
    ("3", int, 3), (3, int, 3), (3.0, int, 3),
    ("0.5", float, 0.5), (2, float, 2.0), ("1e-3", float, 0.001),
    ("true", bool, True), ("no", bool, False), (True, bool, True),
    ("256,128", tuple[int, ...], (256, 128)), ("[256, 128]", tuple[int, ...], (256, 128)),
    ("64", tuple[int, ...], (64,)), ("", tuple[int, ...], ()), ([1, 2], tuple[int, ...], (1, 2)),
    ("relu", Literal["relu", "tanh"], "relu"),
    ("none", Optional[int], None), ("7", Optional[int], 7),
])
def test_coerce(value, tp, expected):
    assert coerce("k", value, tp) == expected


@pytest.mark.parametrize("value, tp, words", [
    ("three", int, "an integer"), ("1.5", int, "an integer"), (True, int, "an integer"),
    ("fast", float, "a number"), ("maybe", bool, "true or false"),
    ("a,b", tuple[int, ...], "list of integers"), ("swish", Literal["relu", "tanh"], "one of relu, tanh"),
])
def test_coerce_refuses_with_the_expected_type(value, tp, words):
    with pytest.raises(ConfigError, match=words):
        coerce("model.x", value, tp)


def test_parse_assignments():
    assert parse_assignments(["optim.lr=0.1", "model.hidden=256,128"]) == {"optim.lr": "0.1", "model.hidden": "256,128"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["optim.lr"])
    with pytest.raises(ConfigError, match="must start with one of"):
        parse_assignments(["lr=0.1"])


def test_resolve_fills_defaults_and_types():
    cfg = recipes.resolve(recipes.get_recipe("mnist-mlp"), "quick", {"optim.lr": "0.01", "model.hidden": "64"})
    assert cfg["optim"]["lr"] == 0.01
    assert cfg["model"]["hidden"] == (64,)
    assert cfg["model"]["activation"] == "relu"  # from the recipe
    assert cfg["model"]["dropout"] == 0.0  # builder default
    assert cfg["train"]["batch_size"] == 20


def test_tiers_apply_on_top_of_the_recipe():
    r = recipes.get_recipe("fashion-cnn-bn")
    assert recipes.resolve(r, "full")["train"]["epochs"] == 50
    assert recipes.resolve(r, "quick")["train"]["epochs"] < 50
    assert recipes.resolve(r, "smoke")["data"]["limit"] > 0


def test_unknown_key_lists_valid_ones_and_suggests():
    with pytest.raises(ConfigError) as e:
        recipes.resolve(recipes.get_recipe("mnist-mlp"), "quick", {"model.hiden": "64"})
    msg = str(e.value)
    assert "did you mean model.hidden" in msg and "model.activation" in msg and "model.dropout" in msg


def test_unknown_section_key():
    with pytest.raises(ConfigError, match="unknown option train.epoch .*did you mean train.epochs"):
        recipes.resolve(recipes.get_recipe("mnist-mlp"), "quick", {"train.epoch": "3"})


def test_switching_model_drops_the_old_models_options():
    cfg = recipes.resolve(recipes.get_recipe("mnist-mlp"), "quick", {"model.name": "lenet5"})
    assert cfg["model"] == {"name": "lenet5", "activation": "tanh"}
    with pytest.raises(ConfigError, match="unknown model 'lenet'.*lenet5"):
        recipes.resolve(recipes.get_recipe("mnist-mlp"), "quick", {"model.name": "lenet"})


def test_unknown_recipe_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean lenet5-mnist"):
        recipes.get_recipe("lenet5-mnst")


def test_unknown_tier():
    with pytest.raises(ConfigError, match="unknown tier"):
        recipes.get_recipe("mnist-mlp").raw_config("medium")


def test_every_recipe_resolves_at_every_tier():
    for r in recipes.list_recipes():
        for tier in recipes.TIERS:
            cfg = recipes.resolve(r, tier)
            assert cfg["train"]["epochs"] >= 1
        assert r.seed or r.published or r.description  # each states its source or what it is
