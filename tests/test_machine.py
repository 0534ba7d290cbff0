"""What the machine is and what a run makes of it: bf16 only where the CPU computes it (its own
flags decide, with oneDNN's answer faked both ways), and the compute threads a user asks for."""

import json
import os

import pytest
import torch

from deepstudy import api, machine
from deepstudy.errors import ConfigError
from deepstudy.train import loop

# /proc/cpuinfo as three CPUs of this project's machines show it (flags shortened)
AVX2_EPYC = "fpu sse sse2 avx avx2 fma bmi2"
AVX512_XEON = AVX2_EPYC + " avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"
AVX512_BF16_EPYC = AVX512_XEON + " avx512_bf16 avx512_vbmi2"
SAPPHIRE_RAPIDS = AVX512_XEON + " amx_tile amx_int8 amx_bf16"


def fake_cpu(monkeypatch, tmp_path, flags: str, key: str = "flags", name: str = "Test CPU"):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: {name}\n{key}\t\t: {flags}\n\n"
                    f"processor\t: 1\nmodel name\t: {name}\n{key}\t\t: {flags}\n")
    monkeypatch.setattr(machine, "CPUINFO", info)
    machine._cpuinfo.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_cpuinfo():
    machine._cpuinfo.cache_clear()
    yield
    machine._cpuinfo.cache_clear()  # the next test reads the real CPU again


@pytest.mark.parametrize("flags,native,isa", [
    (AVX2_EPYC, False, "AVX2"),
    (AVX512_XEON, False, "AVX-512, no native bf16"),  # oneDNN says yes here; the flags say no
    (AVX512_BF16_EPYC, True, "AVX-512 BF16"),
    (SAPPHIRE_RAPIDS, True, "AMX-BF16"),
])
def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, tmp_path, flags, native, isa):
    fake_cpu(monkeypatch, tmp_path, flags, name="AMD EPYC")
    assert machine.cpu_native_bf16() is native
    assert machine.cpu_isa() == isa
    assert machine.hardware(threads=1, device="cpu") == f"AMD EPYC ({isa}), {os.cpu_count()} cores, 1 threads"


def test_arm_bf16_and_an_unreadable_cpuinfo_stay_fp32(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "fp asimd bf16 sve", key="Features")
    assert "bf16" in machine.cpu_flags() and not machine.cpu_native_bf16()
    monkeypatch.setattr(machine, "CPUINFO", tmp_path / "absent")
    machine._cpuinfo.cache_clear()
    assert machine.cpu_flags() == frozenset() and not machine.cpu_native_bf16()


@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.parametrize("flags", [AVX512_XEON, AVX512_BF16_EPYC])
def test_auto_precision_needs_both_the_cpu_and_onednn(monkeypatch, tmp_path, flags, onednn):
    """The Xeon case of the issue: oneDNN's private check answers True on an AVX-512 CPU without
    BF16; `auto` must still take fp32 there, and an explicit bf16 must be refused."""
    fake_cpu(monkeypatch, tmp_path, flags)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    cpu = torch.device("cpu")
    expected = onednn and "avx512_bf16" in flags
    assert loop.native_bf16(cpu) is expected
    assert loop.resolve_precision("auto", cpu) == ("bf16" if expected else "fp32")
    if not expected:
        with pytest.raises(ConfigError, match="no native bf16"):
            api.run("lenet5-mnist", tier="smoke", epochs=1, options={"train.precision": "bf16"},
                    out=tmp_path / "run", progress=False, log=lambda m: None)
        assert not (tmp_path / "run").exists()


def test_threads_are_used_recorded_and_given_back(tmp_path):
    before = torch.get_num_threads()
    seen = []
    r = api.run("lenet5-mnist", tier="smoke", epochs=1, threads=1, out=tmp_path / "run", progress=False,
                log=lambda m: seen.append(torch.get_num_threads()))
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["config"]["train"]["threads"] == 1 and ", 1 threads" in cfg["hardware"]
    assert 1 in seen  # the run computed on one thread
    assert torch.get_num_threads() == before  # and gave the caller's setting back


def test_negative_threads_are_refused_before_any_directory_is_made(tmp_path):
    with pytest.raises(ConfigError, match="train.threads"):
        api.run("lenet5-mnist", tier="smoke", threads=-1, out=tmp_path / "run", progress=False, log=lambda m: None)
    assert not (tmp_path / "run").exists()


def test_numpy_recipes_take_threads_for_their_blas(tmp_path):
    r = api.run("scratch-softmax-mnist", tier="smoke", epochs=1, threads=2, out=tmp_path / "run", progress=False,
                log=lambda m: None)
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["config"]["train"]["threads"] == 2 and ", 2 threads" in cfg["hardware"]


REAL_BUSY_CORES = machine.busy_cores  # conftest stands in a quiet machine for every other test


def stat_file(path, per_cpu: list[tuple[int, int]]) -> None:
    """A /proc/stat with each CPU's (busy, idle) jiffies; the summary line is ignored."""
    lines = [f"cpu  {sum(b for b, _ in per_cpu)} 0 0 {sum(i for _, i in per_cpu)} 0 0 0 0 0 0"]
    lines += [f"cpu{n} {busy} 0 0 {idle} 0 0 0 0 0 0" for n, (busy, idle) in enumerate(per_cpu)]
    path.write_text("\n".join(lines + ["intr 0", "ctxt 0"]) + "\n")


@pytest.mark.parametrize("busy_per_cpu,allowed,expected_busy", [
    ([25, 0], {0, 1}, 1.0),  # one core held by other work over our 0.25 s look
    ([25, 25], {0, 1}, 2.0),
    ([0, 1], {0, 1}, 0.04),
    ([25, 25, 0, 0], {2, 3}, 0.0),  # busy CPUs this process may not use do not count
])
def test_busy_cores_reads_the_cpus_this_process_may_use(monkeypatch, tmp_path, busy_per_cpu, allowed, expected_busy):
    stat = tmp_path / "stat"
    stat_file(stat, [(100, 100)] * len(busy_per_cpu))
    monkeypatch.setattr(machine, "PROC_STAT", stat)
    monkeypatch.setattr(machine, "allowed_cpus", lambda: allowed)
    # while we "sleep", each CPU ticks 25 times, busy_per_cpu of them with other work
    monkeypatch.setattr(machine.time, "sleep", lambda s: stat_file(
        stat, [(100 + b, 100 + 25 - b) for b in busy_per_cpu]))
    assert REAL_BUSY_CORES() == pytest.approx(expected_busy)


def test_busy_cores_is_zero_without_proc_stat(monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "PROC_STAT", tmp_path / "absent")
    assert REAL_BUSY_CORES(interval=0) == 0.0


@pytest.mark.parametrize("cores,busy,threads", [(2, 0.0, 2), (2, 0.3, 2), (2, 1.0, 1), (2, 2.0, 1), (2, 5.0, 1),
                                                (8, 2.6, 5), (1, 0.0, 1)])
def test_auto_threads_leave_busy_cores_to_the_other_work(cores, busy, threads):
    assert machine.auto_threads(cores, busy) == threads


def test_auto_threads_are_applied_and_logged(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "busy_cores", lambda: 2.0)  # as if two other jobs held both cores
    monkeypatch.setattr(machine, "allowed_cpus", lambda: {0, 1})
    said, seen = [], []
    api.run("lenet5-mnist", tier="smoke", epochs=1, out=tmp_path / "run", progress=False,
            log=lambda m: (said.append(m), seen.append(torch.get_num_threads())))
    assert any(m.startswith("threads: 1 of 2 cores") for m in said)
    assert seen[-1] == 1
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["config"]["train"]["threads"] == 0 and ", 1 threads" in cfg["hardware"]


def test_resume_computes_on_the_threads_the_run_began_with(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "allowed_cpus", lambda: {0, 1})
    monkeypatch.setattr(machine, "busy_cores", lambda: 1.0)  # begun while other work held a core
    r = api.run("lenet5-mnist", tier="smoke", epochs=1, out=tmp_path / "run", progress=False, log=lambda m: None)
    assert json.loads((r.run_dir / "config.json").read_text())["threads"] == 1
    monkeypatch.setattr(machine, "busy_cores", lambda: 0.0)  # resumed on a quiet machine
    seen = []
    api.run("lenet5-mnist", out=tmp_path / "run", resume=True, progress=False,
            log=lambda m: seen.append(torch.get_num_threads()))
    assert seen[-1] == 1
