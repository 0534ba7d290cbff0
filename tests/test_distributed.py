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
    assert abs(two["test"]["accuracy"] - one.metrics["test"]["accuracy"]) <= 0.01
    assert abs(two["val"]["loss"] - one.metrics["val"]["loss"]) <= 0.01
    history = (tmp_path / "two" / "history.csv").read_text().splitlines()
    assert len(history) == 2  # a header and one epoch, written once
