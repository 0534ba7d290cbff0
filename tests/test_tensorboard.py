"""TensorBoard (train.tensorboard=true): the epoch driver writes each history row as scalars, so
the event files read back (with TensorBoard's own EventAccumulator) equal history.csv for every
kind of study; a resumed run holds each epoch once; without the package the option is refused
in one line before anything is read or written."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from deepstudy import api, cli
from deepstudy.errors import ConfigError
from deepstudy.io import read_csv
from deepstudy.train import driver
from deepstudy.train.tensorboard import log_dir, tag

# the tests that read event files need the package; the refusals below run without it
needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason="the tensorboard extra is not installed (pip install -e '.[tensorboard]')")


def quiet(msg):
    pass


def scalars(directory) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard reads the folder's event files (its purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def assert_matches_history(directory, history: list[dict]) -> None:
    """Every number of every history row is in the event files at step = epoch, once; nothing else is."""
    logged = scalars(directory)
    expected: dict[str, list[tuple[int, float]]] = {}
    for row in history:
        for field, value in row.items():
            if field not in ("epoch", "stage") and value not in (None, ""):
                expected.setdefault(tag(field), []).append((row["epoch"], value))
    assert set(logged) == set(expected)
    for name, points in expected.items():
        assert [s for s, _ in logged[name]] == [s for s, _ in points], name  # each epoch once, in order
        # event files hold float32
        assert [v for _, v in logged[name]] == pytest.approx([v for _, v in points], rel=1e-6), name


# one recipe per kind of study that trains through the epoch driver; the language model and
# transfer take the same path (their Objective, the driver's logger)
@needs_tensorboard
@pytest.mark.parametrize("name", ["lenet5-mnist", "airline-lstm"])
def test_event_files_hold_history_csv(name, tmp_path, shared_data):
    r = api.run(name, tier="smoke", epochs=2, tensorboard=True, data_dir=shared_data, out=tmp_path / "run",
                progress=False, log=quiet)
    assert r.config["config"]["train"]["tensorboard"] is True
    history = read_csv(r.run_dir / "history.csv")
    assert len(history) == 2
    assert_matches_history(r.run_dir / "tensorboard", history)
    tags = set(scalars(r.run_dir / "tensorboard"))
    assert {"loss/train", "loss/val", "lr"} <= tags
    assert ("accuracy/val" in tags) == (name == "lenet5-mnist")  # a forecaster has a loss, no accuracy


@needs_tensorboard
def test_resume_logs_each_epoch_once(tmp_path, monkeypatch):
    """Killed after epoch 2's events were written but before its checkpoint: the resumed run
    trains epoch 2 again, and TensorBoard must not show it twice."""
    options = dict(tier="smoke", epochs=3, tensorboard=True, out=tmp_path / "run", progress=False, log=quiet)
    real_save = driver.save_training_state
    calls = {"n": 0}

    def crash_at_second_checkpoint(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(driver, "save_training_state", crash_at_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        api.run("lenet5-mnist", **options)
    monkeypatch.setattr(driver, "save_training_state", real_save)
    # the events of epoch 2 reached the disk before the crash
    assert [s for s, _ in scalars(tmp_path / "run" / "tensorboard")["loss/val"]] == [1, 2]

    resumed = api.run("lenet5-mnist", resume=True, **{k: v for k, v in options.items() if k not in ("tier", "epochs")})
    assert len(list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one more file
    assert_matches_history(tmp_path / "run" / "tensorboard", read_csv(resumed.run_dir / "history.csv"))


@needs_tensorboard
def test_tensorboard_turned_on_when_resuming(tmp_path, monkeypatch):
    """A run begun without TensorBoard and resumed with it: the earlier epochs are there too,
    and config.json says the run now logs."""
    real_save = driver.save_training_state
    calls = {"n": 0}

    def crash_after_first_checkpoint(*args, **kwargs):
        calls["n"] += 1
        real_save(*args, **kwargs)
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(driver, "save_training_state", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        api.run("lenet5-mnist", tier="smoke", epochs=2, out=tmp_path / "run", progress=False, log=quiet)
    monkeypatch.setattr(driver, "save_training_state", real_save)
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert cli.main(["run", "lenet5-mnist", "--out", str(tmp_path / "run"), "--resume", "--tensorboard",
                     "--no-progress"]) == 0
    r = api.load_run(tmp_path / "run")
    assert r.config["config"]["train"]["tensorboard"] is True
    assert_matches_history(tmp_path / "run" / "tensorboard", r.history)


def test_stage_folders():
    from pathlib import Path
    assert log_dir(Path("r/history.csv")) == Path("r/tensorboard")
    assert log_dir(Path("r/history_finetune.csv")) == Path("r/tensorboard/finetune")
    assert (tag("val_accuracy"), tag("train_loss"), tag("lr"), tag("chars_per_second")) == \
        ("accuracy/val", "loss/train", "lr", "chars_per_second")


def test_refused_without_the_package(tmp_path, monkeypatch, capsys):
    # as on a machine without it: importing tensorboard (and torch's wrapper of it) fails
    for module in [m for m in sys.modules if m == "tensorboard" or m.startswith(("tensorboard.", "torch.utils.tensorboard"))]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    out = tmp_path / "run"
    assert cli.main(["run", "lenet5-mnist", "--tier", "smoke", "--tensorboard", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "deepstudy[tensorboard]" in err and "train.tensorboard" in err
    assert not out.exists()  # refused before a run directory was made or data read
    with pytest.raises(ConfigError, match=r"deepstudy\[tensorboard\]"):
        api.run("airline-lstm", tier="smoke", options={"train.tensorboard": "true"}, out=out, log=quiet)
    assert not out.exists()


def test_numpy_recipes_refuse_it(tmp_path, capsys):
    assert cli.main(["run", "scratch-linreg", "--tier", "smoke", "--tensorboard", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "NumPy recipes write no TensorBoard" in err
    assert not (tmp_path / "r").exists()
