"""kill -9 at any point of a run, then `--resume`: the run ends exactly where the uninterrupted one
ends — the same history, the same test metrics, the same weights bit for bit.

Each run is a real `deepstudy run` process.  A small wrapper (KILLER below) sends SIGKILL to its own
process at a chosen moment: in the middle of an epoch (the Nth backward pass), or half-way through
writing the checkpoint or the weights (the temporary file holds half its bytes when the process
dies, as a power cut would leave it).  SIGKILL cannot be caught: no `finally`, no atexit, nothing
tidies up — what is on disk is what the next `--resume` finds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deepstudy.io import read_csv

# `--threads 1`: the sums of a CPU run can depend on how many threads shared them, and the auto
# count depends on the machine's load at the moment each process starts
RUN = ["run", "lenet5-mnist", "--tier", "smoke", "--epochs", "2", "--threads", "1", "--no-progress"]
STEPS_PER_EPOCH = 20  # the smoke tier: 2,000 training images in batches of 100

KILLER = r'''
import os, signal, sys
import torch
import deepstudy.train.checkpoint as checkpoint
from deepstudy.cli import main

point, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls = 0


def now():
    global calls
    calls += 1
    return calls == n


def die_half_written(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    os.kill(os.getpid(), signal.SIGKILL)


if point == "step":  # the nth backward pass: in the middle of an epoch
    backward = torch.Tensor.backward

    def killing_backward(self, *args, **kwargs):
        if now():
            os.kill(os.getpid(), signal.SIGKILL)
        return backward(self, *args, **kwargs)

    torch.Tensor.backward = killing_backward
elif point == "checkpoint":  # half-way through the nth checkpoint.pt
    save = torch.save

    def killing_save(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)
        if now():
            die_half_written(f)

    checkpoint.torch.save = killing_save
elif point == "weights":  # half-way through the nth model.safetensors
    save_file = checkpoint.save_file

    def killing_save_file(tensors, filename, *args, **kwargs):
        save_file(tensors, filename, *args, **kwargs)
        if now():
            die_half_written(filename)

    checkpoint.save_file = killing_save_file
sys.exit(main(argv))
'''


def deepstudy(*args: str, tmp_path: Path, killer: tuple[str, int] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEEPSTUDY_OFFLINE": "1", "DEEPSTUDY_CACHE": str(tmp_path / "cache")}
    env.pop("DEEPSTUDY_DATA", None)  # the MNIST the package carries
    if killer is None:
        cmd = [sys.executable, "-m", "deepstudy", *args]
    else:
        script = tmp_path / "killer.py"
        script.write_text(KILLER)
        cmd = [sys.executable, str(script), killer[0], str(killer[1]), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def outcome(run_dir: Path) -> dict:
    """What a finished run leaves that must not depend on having been killed."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"history": [{k: v for k, v in row.items() if k != "seconds"} for row in read_csv(run_dir / "history.csv")],
            "val": metrics["val"], "test": metrics["test"], "best_epoch": metrics["best_epoch"]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("whole")
    done = deepstudy(*RUN, "--out", str(tmp / "run"), tmp_path=tmp)
    assert done.returncode == 0, done.stderr
    return tmp / "run"


@pytest.mark.parametrize("point, n, left", [
    ("step", 5, "nothing"),  # in epoch 1, before any checkpoint: --resume starts it again
    ("step", STEPS_PER_EPOCH + 7, "epoch 1"),  # in epoch 2
    ("weights", 2, "epoch 1"),  # writing epoch 2's better weights
    ("checkpoint", 2, "epoch 1"),  # writing epoch 2's checkpoint, its weights already saved
], ids=["epoch-1", "mid-epoch-2", "weights-write", "checkpoint-write"])
def test_kill_9_then_resume_ends_like_the_uninterrupted_run(uninterrupted, tmp_path, point, n, left):
    out = tmp_path / "run"
    killed = deepstudy(*RUN, "--out", str(out), tmp_path=tmp_path, killer=(point, n))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "metrics.json").exists()
    if left == "nothing":
        assert not (out / "checkpoint.pt").exists()
    else:  # the last complete checkpoint is epoch 1's; a kill mid-write leaves only a temp file
        assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    leftovers = sorted(p.name for p in out.glob(".*.tmp"))
    assert len(leftovers) == (point in ("weights", "checkpoint")), leftovers

    resumed = deepstudy(*RUN, "--out", str(out), "--resume", tmp_path=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert not list(out.glob(".*.tmp"))  # --resume cleared the interrupted write
    assert outcome(out) == outcome(uninterrupted)
    a, b = load_file(str(uninterrupted / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
