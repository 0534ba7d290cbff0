"""Typed options: coercion, unknown keys, tiers and overrides."""

from typing import Literal, Optional

import pytest

from deepstudy import recipes
from deepstudy.config import coerce, parse_assignments
from deepstudy.tasks import resolve
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
    cfg = resolve(recipes.get_recipe("mnist-mlp"), "quick", {"optim.lr": "0.01", "model.hidden": "64"})
    assert cfg.optim.lr == 0.01
    assert cfg.model.options["hidden"] == (64,)
    assert cfg.model.options["activation"] == "relu"  # from the recipe
    assert cfg.model.options["dropout"] == 0.0  # builder default
    assert cfg.train.batch_size == 20


def test_tiers_apply_on_top_of_the_recipe():
    r = recipes.get_recipe("fashion-cnn-bn")
    assert resolve(r, "full").train.epochs == 50
    assert resolve(r, "quick").train.epochs < 50
    assert resolve(r, "smoke").data.options["limit"] > 0


def test_unknown_key_lists_valid_ones_and_suggests():
    with pytest.raises(ConfigError) as e:
        resolve(recipes.get_recipe("mnist-mlp"), "quick", {"model.hiden": "64"})
    msg = str(e.value)
    assert "did you mean model.hidden" in msg and "model.activation" in msg and "model.dropout" in msg


def test_unknown_section_key():
    with pytest.raises(ConfigError, match="unknown option train.epoch .*did you mean train.epochs"):
        resolve(recipes.get_recipe("mnist-mlp"), "quick", {"train.epoch": "3"})


def test_switching_model_drops_the_old_models_options():
    cfg = resolve(recipes.get_recipe("mnist-mlp"), "quick", {"model.name": "lenet5"})
    assert cfg.model.as_dict() == {"name": "lenet5", "activation": "tanh"}
    with pytest.raises(ConfigError, match="unknown model 'lenet'.*lenet5"):
        resolve(recipes.get_recipe("mnist-mlp"), "quick", {"model.name": "lenet"})


def test_unknown_recipe_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean lenet5-mnist"):
        recipes.get_recipe("lenet5-mnst")


def test_unknown_tier():
    with pytest.raises(ConfigError, match="unknown tier"):
        recipes.get_recipe("mnist-mlp").raw_config("medium")


def test_every_recipe_resolves_at_every_tier():
    for r in recipes.list_recipes():
        for tier in recipes.TIERS:
            cfg = resolve(r, tier)
            assert cfg.train.epochs >= 1
        assert r.seed or r.published or r.description  # each states its source or what it is


BAD_SETTINGS = [  # (recipe, --set, what the one line names)
    ("lenet5-mnist", "train.epochs=0", "train.epochs"),
    ("lenet5-mnist", "train.batch_size=0", "train.batch_size"),
    ("lenet5-mnist", "optim.lr=-0.1", "optim.lr"),
    ("lenet5-mnist", "train.ema=1.5", "train.ema"),
    ("lenet5-mnist", "schedule.milestones=5,3", "schedule.milestones"),
    ("lenet5-mnist", "train.device=gpu", "train.device"),
    ("trec-lstm", "train.label_smoothing=1", "train.label_smoothing"),
    ("shakespeare-char-lstm", "train.monitor=val_accuracy", "val_loss"),
    ("airline-lstm", "train.mixup=0.2", "mixup"),
    ("catsdogs-cifar-finetune", "transfer.l2sp=-1", "transfer.l2sp"),
    ("catsdogs-cifar-finetune", "transfer.views=0", "transfer.views"),
    ("scratch-linreg", "train.monitor=val_accuracy", "val_loss"),
    ("scratch-mlp-mnist", "train.ema=0.9", "train.ema"),
]


@pytest.mark.parametrize("recipe, setting, named", BAD_SETTINGS)
def test_bad_settings_are_refused_before_any_data_or_weights(recipe, setting, named, tmp_path, monkeypatch, capsys):
    from deepstudy import data, models
    from deepstudy.cli import main
    from deepstudy.tasks import scratch, transfer

    def touched(*args, **kwargs):
        raise AssertionError("data or weights were read before the settings were checked")

    for module, name in ((data, "load_dataset"), (scratch, "load_dataset"), (transfer, "load_pretrained"),
                         (transfer, "load_backbone"), (models, "create_model")):
        monkeypatch.setattr(module, name, touched)
    out = tmp_path / "run"
    assert main(["run", recipe, "--tier", "smoke", "--set", setting, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "Traceback" not in err, err
    assert not out.exists()  # no run directory, not even an empty one
