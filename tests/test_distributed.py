"""More than one process: `torchrun -m deepstudy run ...` with DistributedDataParallel on gloo
(two CPU processes, a few seconds), checked against a single-process run of the same recipe."""

import json
import subprocess
import sys

import pytest

from deepstudy import api
from deepstudy.train.distributed import World, shard


@pytest.mark.parametrize("n, size", [(128, 2), (7, 2), (10, 3), (1, 2)])
def test_shards_cover_a_batch_once_in_order(n, size):
    parts = [shard(n, World(rank, size)) for rank in range(size)]
    covered = [i for p in parts for i in range(n)[p]]
    assert covered == list(range(n))
    lengths = [p.stop - p.start for p in parts]
    assert max(lengths) - min(lengths) <= 1


def test_two_gloo_processes_match_a_single_process(tmp_path):
    one = api.run("lenet5-mnist", tier="smoke", out=tmp_path / "one", progress=False, log=lambda m: None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "deepstudy", "run", "lenet5-mnist", "--tier", "smoke", "--out", str(tmp_path / "two"), "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 0 alone speaks and writes: one epoch line, one run directory line
    assert done.stdout.count("epoch   1/1") == 1 and done.stdout.count("run directory:") == 2  # start and end
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert two["processes"] == 2 and config["processes"] == 2 and config["command"][0] == "torchrun"
    # each process saw half of every batch; the averaged gradients are the whole batch's, so the
    # run follows the single-process one up to float rounding (LeNet-5 has no BatchNorm)
    print(f"lenet5-mnist: test accuracy one process {one.metrics['test']['accuracy']:.4f}, "
          f"two processes {two['test']['accuracy']:.4f}")  # shown with pytest -s
    assert abs(two["test"]["accuracy"] - one.metrics["test"]["accuracy"]) <= 0.01
    assert abs(two["val"]["loss"] - one.metrics["val"]["loss"]) <= 0.01
    history = (tmp_path / "two" / "history.csv").read_text().splitlines()
    assert len(history) == 2  # a header and one epoch, written once


def torchrun(*args: str, env_data: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "deepstudy", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


# one recipe of each kind of PyTorch study, its smoke tier; (headline key, tolerance): each
# process has its own dropout masks and its own BatchNorm statistics, so the runs agree within
# training noise, not to the last digit
KINDS = {
    "trec-lstm": ("accuracy", 0.08),  # text classification
    "shakespeare-char-lstm": ("loss", 0.02),  # language model: nats per character
    "airline-lstm": ("rmse", 0.15),  # forecast: relative, below
    "catsdogs-cifar-finetune": ("accuracy", 0.15),  # transfer: features, head, then fine-tuning
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_of_study_runs_on_two_processes(name, data_root, tmp_path):
    key, tolerance = KINDS[name]
    extra = ["--batch-size", "4"] if name == "airline-lstm" else []  # its batch of 1 cannot be shared
    one = api.run(name, tier="smoke", data_dir=data_root, out=tmp_path / "one", progress=False, log=lambda m: None,
                  batch_size=4 if extra else None)
    runs = tmp_path / "runs"
    runs.mkdir()
    done = torchrun("run", name, "--tier", "smoke", "--data-dir", str(data_root), "--out", str(runs / "two"),
                    "--no-progress", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((runs / "two" / "metrics.json").read_text())
    assert two["processes"] == 2
    a, b = one.metrics["test"][key], two["test"][key]
    print(f"{name}: test {key} one process {a:.4f}, two processes {b:.4f}")  # shown with pytest -s
    assert abs(a - b) <= tolerance * (abs(a) if key == "rmse" else 1), (a, b)
    # process 0 alone wrote: one run directory, nothing half-written, each epoch logged once
    assert [p.name for p in runs.iterdir()] == ["two"]
    assert not list((runs / "two").rglob("*.tmp"))
    epochs = len(one.history)
    history = (runs / "two" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + epochs
    assert done.stdout.count("run directory:") == 2  # at the start and at the end, from process 0 only


def test_numpy_recipes_refuse_torchrun_in_one_line(tmp_path):
    done = torchrun("run", "scratch-linreg", "--tier", "smoke", "--out", str(tmp_path / "r"))
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("deepstudy: error")]
    assert len(errors) == 1 and "without torchrun" in errors[0], done.stderr[-2000:]
    assert not (tmp_path / "r").exists()
