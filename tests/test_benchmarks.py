"""The side-by-side benchmark reads the peer's table: if the peer's format and our parser drift
apart, the comparison would silently lose rows, so the parser is checked on the peer's own lines."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "cifar_fast_vs_airbench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cifar_fast_vs_airbench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# airbench94_cpu.py's output (print_columns): the first row carries the run number, the others
# leave it blank, the last row is the TTA evaluation
PEER = """\
------------------------------------------------------------------------------------------------------
|  run     |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  |  total_time_seconds  |
------------------------------------------------------------------------------------------------------
|       0  |      0  |      1.5042  |     0.6475  |   0.6170  |               |            225.7277  |
|          |      1  |      1.0410  |     0.7969  |   0.7545  |               |            451.0003  |
|          |      2  |      0.9000  |     0.8300  |   0.8012  |               |            676.5000  |
|          |   eval  |      0.9000  |     0.8300  |   0.8012  |       0.8123  |            700.2500  |
------------------------------------------------------------------------------------------------------
FINAL tta_acc=0.8123 wall_s=812.3
"""


def test_peer_rows_are_read_from_its_own_table(bench):
    result = bench.parse_peer(PEER.splitlines())
    assert result["rows"] == {1: (225.7277, 0.6170), 2: (451.0003, 0.7545), 3: (676.5, 0.8012)}
    assert (result["tta_accuracy"], result["seconds"], result["wall_seconds"]) == (0.8123, 700.25, 812.3)


def test_a_kept_log_is_reused_and_an_unfinished_one_is_not(bench, tmp_path, monkeypatch):
    log = tmp_path / "peer.log"
    log.write_text("".join(f"[peer] {line}\n" for line in PEER.splitlines()))  # this script's echo
    assert bench.run_peer(Path("/no/peer.py"), tmp_path, 9.9, 2, tmp_path, log)["tta_accuracy"] == 0.8123
    # a log cut off before the TTA row (an interrupted peer) means running the peer again
    log.write_text("\n".join(PEER.splitlines()[:5]))
    started = []

    def popen(cmd, **kwargs):  # stands in for the peer's hour of training
        started.append(cmd)
        raise OSError("the peer is not run in tests")

    monkeypatch.setattr(bench.subprocess, "Popen", popen)
    with pytest.raises(OSError, match="not run in tests"):
        bench.run_peer(Path("/no/peer.py"), tmp_path, 9.9, 2, tmp_path, log)
    assert started and started[0][1] == "/no/peer.py"
