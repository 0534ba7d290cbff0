"""Settings kept and replayed: `deepstudy run --config FILE.toml` (or YAML) and
`deepstudy run --from RUN_DIR`, which reproduces a run's metrics exactly on the same CPU."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from deepstudy import api
from deepstudy.cli import main
from deepstudy.config import read_settings_file


def quiet(message: str) -> None:
    pass


def saved(run_dir) -> dict:
    return json.loads((run_dir / "config.json").read_text())


def test_a_toml_file_sets_options_and_the_command_line_overrides_it(tmp_path, capsys):
    settings = tmp_path / "experiment.toml"
    settings.write_text('recipe = "lenet5-mnist"\ntier = "smoke"\n\n[train]\nepochs = 2\nseed = 7\n\n'
                        '[optim]\nlr = 0.004\nbetas = [0.8, 0.99]\n\n[model]\nactivation = "tanh"\n')
    # no NAME: the file names the recipe; --set wins over the file
    assert main(["run", "--config", str(settings), "--set", "train.seed=8", "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    config = saved(tmp_path / "run")
    assert config["recipe"] == "lenet5-mnist" and config["tier"] == "smoke"
    assert config["config"]["train"]["epochs"] == 2 and config["config"]["train"]["seed"] == 8
    assert config["config"]["optim"]["lr"] == 0.004 and config["config"]["optim"]["betas"] == [0.8, 0.99]
    assert config["config"]["model"]["activation"] == "tanh"
    assert config["config_file"] == str(settings)
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs


def test_a_yaml_file_reads_the_same_as_toml(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  epochs: 1\n  batch_size: 50\noptim:\n  name: sgd\n  lr: 0.05\n")
    (tmp_path / "a.toml").write_text('[train]\nepochs = 1\nbatch_size = 50\n[optim]\nname = "sgd"\nlr = 0.05\n')
    assert read_settings_file(tmp_path / "a.yaml") == read_settings_file(tmp_path / "a.toml") == {
        "train.epochs": 1, "train.batch_size": 50, "optim.name": "sgd", "optim.lr": 0.05}
    r = api.run("lenet5-mnist", tier="smoke", config_file=tmp_path / "a.yaml", out=tmp_path / "yaml", threads=1,
                progress=False, log=quiet)
    assert r.config["config"]["optim"]["name"] == "sgd" and r.config["config"]["train"]["batch_size"] == 50
    assert len(r.history) == 1


def test_from_a_run_reproduces_its_metrics_exactly(tmp_path, capsys):
    first = api.run("lenet5-mnist", tier="smoke", epochs=2, lr=0.003, seed=5, options={"train.label_smoothing": 0.1},
                    out=tmp_path / "first", progress=False, log=quiet)
    assert main(["run", "--from", str(first.run_dir), "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    again = tmp_path / "again"
    config = saved(again)
    assert config["config"] == first.config["config"] | {"train": {**first.config["config"]["train"],
                                                                   "threads": first.config["threads"]}}
    assert config["replay_of"] == str(first.run_dir.resolve())
    metrics = json.loads((again / "metrics.json").read_text())
    assert metrics["test"] == first.metrics["test"] and metrics["val"] == first.metrics["val"]
    a, b = load_file(str(first.run_dir / "model.safetensors")), load_file(str(again / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_from_a_run_with_a_change(tmp_path):
    first = api.run("lenet5-mnist", tier="smoke", out=tmp_path / "first", progress=False, log=quiet)
    changed = api.run_from(first.run_dir, epochs=2, options={"optim.lr": 0.001}, out=tmp_path / "changed",
                           progress=False, log=quiet)
    assert changed.config["config"]["train"]["epochs"] == 2 and changed.config["config"]["optim"]["lr"] == 0.001
    assert len(changed.history) == 2
    # everything not changed is the first run's
    unchanged = {k: v for k, v in first.config["config"]["model"].items()}
    assert changed.config["config"]["model"] == unchanged
    assert changed.config["config"]["data"] == first.config["config"]["data"]
