"""Behaviour of a run: resume equals an uninterrupted run, determinism, atomic writes, the run
directory's contents, and refusing to overwrite what is saved."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from deepstudy import api
from deepstudy.errors import ConfigError, RunDirError
from deepstudy.io import atomic_path, read_csv, write_json
from deepstudy.train import loop
from deepstudy.train.checkpoint import load_checkpoint, save_checkpoint


def quiet(msg):
    pass


def smoke(out, **kw):
    kw.setdefault("epochs", 3)
    return api.run("lenet5-mnist", tier="smoke", out=out, progress=False, log=quiet, **kw)


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def without_time(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_run_directory_contents(tmp_path):
    r = smoke(tmp_path / "run", epochs=2)
    d = r.run_dir
    for name in ("config.json", "history.csv", "metrics.json", "model.safetensors", "checkpoint.pt", "summary.txt"):
        assert (d / name).is_file(), name
    for stem in ("curves", "confusion_matrix", "confusion_matrix_normalized", "predictions", "class_distribution"):
        assert (d / "plots" / f"{stem}.png").stat().st_size > 1000, stem
        assert (d / "plots" / f"{stem}.csv").exists() or (d / "plots" / f"{stem}.json").exists(), stem
    assert (d / "plots" / "confident_mistakes.csv").exists()

    cfg = json.loads((d / "config.json").read_text())
    assert cfg["recipe"] == "lenet5-mnist" and cfg["tier"] == "smoke"
    assert cfg["config"]["train"]["epochs"] == 2 and cfg["config"]["optim"]["name"] == "adam"
    assert cfg["device"] == "cpu" and "torch" in cfg["versions"] and cfg["data"]["classes"][0] == "0"

    history = read_csv(d / "history.csv")
    assert [row["epoch"] for row in history] == [1, 2]
    assert set(history[0]) == set(loop.HISTORY_FIELDS)

    m = json.loads((d / "metrics.json").read_text())
    assert m["recipe"] == "lenet5-mnist"
    assert set(m["val"]) == {"accuracy", "loss"}
    assert {"accuracy", "loss", "per_class"} <= set(m["test"])
    assert set(m["test"]["per_class"]["7"]) == {"precision", "recall", "f1", "support"}
    assert sum(c["support"] for c in m["test"]["per_class"].values()) == 500
    assert 0.5 < m["test"]["accuracy"] <= 1  # 2,000 real images, 2 epochs: well above chance

    state = torch.load(d / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["finished"]
    weights = load_file(str(d / "model.safetensors"))
    assert set(weights) == set(state["model"])
    # the confusion-matrix CSV holds the counts the plot shows
    cm = read_csv(d / "plots" / "confusion_matrix.csv")
    assert sum(sum(v for k, v in row.items() if k != "true") for row in cm) == 500


def test_best_on_validation_is_what_meets_the_test_set(tmp_path):
    r = smoke(tmp_path / "run", epochs=3)
    best = max(r.history, key=lambda row: row["val_accuracy"])
    assert r.metrics["best_epoch"] == best["epoch"]
    assert r.metrics["val"]["accuracy"] == pytest.approx(best["val_accuracy"])


@pytest.mark.parametrize("options", [{}, {"train.mixup": 0.4}, {"train.ema": 0.9}, {"train.lookahead": 3}],
                         ids=["plain", "mixup", "ema", "lookahead"])
def test_resume_ends_like_an_uninterrupted_run(tmp_path, monkeypatch, options):
    full = smoke(tmp_path / "full", options=options)

    real_evaluate = loop.evaluate
    calls = {"n": 0}

    def crash_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C in epoch 2
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(loop, "evaluate", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        smoke(tmp_path / "cut", options=options)
    monkeypatch.setattr(loop, "evaluate", real_evaluate)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "cut" / "metrics.json").exists()

    resumed = api.run("lenet5-mnist", out=tmp_path / "cut", resume=True, progress=False, log=quiet)
    assert without_time(resumed.history) == without_time(full.history)
    assert resumed.metrics["test"] == full.metrics["test"]
    a, b = load_file(str(full.run_dir / "model.safetensors")), load_file(str(resumed.run_dir / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_result_other_seed_other_result(tmp_path):
    a = smoke(tmp_path / "a", epochs=1)
    b = smoke(tmp_path / "b", epochs=1)
    c = smoke(tmp_path / "c", epochs=1, seed=1)
    assert a.metrics["test"] == b.metrics["test"]
    assert a.history[0]["train_loss"] != c.history[0]["train_loss"]


def test_resume_of_a_finished_run_changes_nothing_it_saved(tmp_path):
    r = smoke(tmp_path / "run", epochs=1)
    before = digest(r.run_dir / "plots") | {"model": digest(r.run_dir)["model.safetensors"]}
    again = api.run("lenet5-mnist", out=r.run_dir, resume=True, progress=False, log=quiet)
    assert again.metrics["test"] == r.metrics["test"]
    assert digest(r.run_dir)["model.safetensors"] == before["model"]


def test_resume_keeps_the_settings_it_started_with(tmp_path):
    r = smoke(tmp_path / "run", epochs=1)
    before = digest(r.run_dir)
    with pytest.raises(ConfigError, match="cannot change optim.lr"):
        api.run("lenet5-mnist", out=r.run_dir, resume=True, lr=0.5, progress=False, log=quiet)
    with pytest.raises(ConfigError, match="cannot change train.epochs"):
        api.run("lenet5-mnist", out=r.run_dir, resume=True, epochs=5, progress=False, log=quiet)
    with pytest.raises(ConfigError, match="holds a run of 'lenet5-mnist', not 'mnist-mlp'"):
        api.run("mnist-mlp", out=r.run_dir, resume=True, progress=False, log=quiet)
    assert digest(r.run_dir) == before


def test_resume_of_a_run_saved_before_an_option_existed(tmp_path):
    # an option added since the run was saved is absent from its config.json: it takes the
    # option's own default (what the code did then), and the run resumes instead of being refused
    r = smoke(tmp_path / "run", epochs=1)
    path = r.run_dir / "config.json"
    saved = json.loads(path.read_text())
    del saved["config"]["train"]["lookahead"]
    path.write_text(json.dumps(saved))
    before = {k: v for k, v in digest(r.run_dir).items() if k in ("config.json", "model.safetensors")}
    again = api.run("lenet5-mnist", out=r.run_dir, resume=True, progress=False, log=quiet)
    assert again.metrics["test"] == r.metrics["test"]
    assert {k: v for k, v in digest(r.run_dir).items() if k in before} == before
    with pytest.raises(ConfigError, match="cannot change train.lookahead"):  # still refused when set
        api.run("lenet5-mnist", out=r.run_dir, resume=True, options={"train.lookahead": 5}, progress=False, log=quiet)


def test_a_new_run_never_writes_over_an_existing_one(tmp_path):
    r = smoke(tmp_path / "run", epochs=1)
    before = digest(r.run_dir)
    with pytest.raises(RunDirError, match="already holds a run .*--resume"):
        smoke(r.run_dir, epochs=1)
    assert digest(r.run_dir) == before


def test_truncated_checkpoint_is_refused_and_left_alone(tmp_path):
    r = smoke(tmp_path / "run", epochs=1)
    ck = r.run_dir / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    before = digest(r.run_dir)
    with pytest.raises(RunDirError, match="damaged or truncated"):
        api.run("lenet5-mnist", out=r.run_dir, resume=True, progress=False, log=quiet)
    assert digest(r.run_dir) == before


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left behind


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{broken")
            raise RuntimeError
    assert json.loads(target.read_text()) == {"a": 1}
    write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_notebook_api_plots_are_figures(tmp_path):
    from matplotlib.figure import Figure

    from deepstudy import load_run

    r = smoke(tmp_path / "run", epochs=1)
    for fig in (r.plot_curves(), r.plot_confusion(), r.plot_confusion(normalized=True), r.plot_per_class_accuracy(),
                r.plot_class_distribution(), r.plot_predictions(), r.plot_mistakes()):
        assert isinstance(fig, Figure) and fig.axes
    again = load_run(r.run_dir)
    assert again.metrics == r.metrics and len(again.history) == 1
    model = again.load_model()
    assert not model.training and sum(p.numel() for p in model.parameters()) == 61_706


def test_mix_blends_each_image_with_another_and_returns_that_ones_label():
    x = torch.arange(8.0)[:, None, None, None].expand(8, 3, 4, 4)  # image i is filled with i
    y = torch.arange(8)
    mixed, y2, lam = loop.mix(x, y, 0.4, torch.Generator().manual_seed(0))
    assert 0.0 < lam < 1.0 and sorted(y2.tolist()) == list(range(8)) and not torch.equal(y2, y)
    assert torch.allclose(mixed, lam * x + (1 - lam) * y2.float()[:, None, None, None])
    again = loop.mix(x, y, 0.4, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], mixed) and again[2] == lam


def test_mixup_changes_training_and_is_refused_where_it_cannot_apply(tmp_path):
    plain = smoke(tmp_path / "plain", epochs=1)
    mixed = smoke(tmp_path / "mixed", epochs=1, options={"train.mixup": 0.4})
    assert mixed.history[0]["train_loss"] != plain.history[0]["train_loss"]
    with pytest.raises(ConfigError, match="train.mixup"):
        smoke(tmp_path / "bad", epochs=1, options={"train.mixup": -1.0})


def test_ema_judges_and_keeps_the_moving_average_of_the_weights(tmp_path):
    r = smoke(tmp_path / "run", epochs=1, options={"train.ema": 0.9})
    state = torch.load(r.run_dir / "checkpoint.pt", weights_only=True)
    saved = load_file(str(r.run_dir / "model.safetensors"))
    average = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    assert state["ema"]["n_averaged"] > 1 and saved.keys() == average.keys()
    assert all(torch.equal(saved[k], average[k]) for k in saved)  # the best weights are the average
    assert any(not torch.equal(saved[k], state["model"][k]) for k in saved)  # not the last step's
    plain = smoke(tmp_path / "plain", epochs=1)
    assert r.history[0]["train_loss"] == plain.history[0]["train_loss"]  # training itself is unchanged
    assert r.history[0]["val_accuracy"] != plain.history[0]["val_accuracy"]
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError, match="train.ema"):
            smoke(tmp_path / f"bad{bad}", epochs=1, options={"train.ema": bad})


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_takes_bf16_only_where_it_is_native_and_records_it(tmp_path, monkeypatch, native):
    assert isinstance(loop.native_bf16(torch.device("cpu")), bool)  # the real check answers, on any CPU
    monkeypatch.setattr(loop, "native_bf16", lambda device: native)
    r = smoke(tmp_path / "run", epochs=1, options={"train.precision": "auto"})
    assert r.config["config"]["train"]["precision"] == ("bf16" if native else "fp32")
    monkeypatch.setattr(loop, "native_bf16", lambda device: not native)  # as if resumed on another machine
    again = dict(out=tmp_path / "run", resume=True, progress=False, log=quiet)
    if native:  # a bf16 run, on a CPU that would only emulate bf16: refused, fp32 allowed
        with pytest.raises(ConfigError, match="train.precision=fp32"):
            api.run("lenet5-mnist", **again)
        resumed = api.run("lenet5-mnist", options={"train.precision": "fp32"}, **again)
        assert resumed.config["config"]["train"]["precision"] == "fp32"  # what the rest ran in
        assert resumed.metrics["test"]["accuracy"] == pytest.approx(r.metrics["test"]["accuracy"], abs=0.05)
    else:  # the recorded choice is kept, not decided again
        assert api.run("lenet5-mnist", **again).config["config"]["train"]["precision"] == "fp32"


def test_bf16_on_a_cpu_without_it_is_refused_before_any_directory_is_made(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "native_bf16", lambda device: False)
    with pytest.raises(ConfigError, match="no native bf16"):
        smoke(tmp_path / "run", epochs=1, options={"train.precision": "bf16"})
    assert not (tmp_path / "run").exists()


def test_early_stopping_waits_patience_epochs_then_keeps_the_best(tmp_path):
    # lr 0: nothing ever improves on epoch 1, so a patience of 2 ends the run after epoch 3
    r = smoke(tmp_path / "run", epochs=10, lr=0.0, options={"train.early_stop": 2})
    assert [row["epoch"] for row in r.history] == [1, 2, 3]
    assert r.metrics["stopped_early"] and r.metrics["best_epoch"] == 1
    assert torch.load(r.run_dir / "checkpoint.pt", weights_only=True)["finished"]


def test_monitoring_validation_loss(tmp_path):
    r = smoke(tmp_path / "run", epochs=3, options={"train.monitor": "val_loss"})
    assert r.metrics["best_epoch"] == min(r.history, key=lambda row: row["val_loss"])["epoch"]


def test_without_a_validation_split_the_last_epoch_is_kept(tmp_path):
    # data.val_fraction=0 (a refit on every training question): nothing to select on, so the
    # final weights are the ones kept and tested, not the first epoch's (all scores equal)
    from conftest import make_trec

    make_trec(tmp_path / "data")
    lines = []
    r = api.run("trec-cnn", tier="smoke", data_dir=tmp_path / "data", options={"data.val_fraction": 0},
                out=tmp_path / "run", progress=False, log=lines.append)
    assert r.metrics["best_epoch"] == len(r.history) == 3
    assert r.metrics["val"]["accuracy"] is None and all(row["val_accuracy"] in ("", None) for row in r.history)
    assert any("no validation split" in line for line in lines)
    assert not any("val loss" in line for line in lines if line.startswith("epoch"))
    # the kept weights are the last epoch's: the final checkpoint holds the same tensors
    kept, last = load_file(r.run_dir / "model.safetensors"), load_checkpoint(r.run_dir / "checkpoint.pt")["model"]
    assert kept.keys() == last.keys() and all(torch.equal(kept[k], last[k]) for k in kept)

    # what would watch the missing split is refused before anything trains
    with pytest.raises(ConfigError, match="val_fraction=0"):
        api.run("trec-cnn", tier="smoke", data_dir=tmp_path / "data", out=tmp_path / "run2", progress=False,
                log=lines.append, options={"data.val_fraction": 0, "train.early_stop": 2})
