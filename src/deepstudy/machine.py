"""What this machine is: the CPU's name and instruction sets, whether it computes bfloat16
natively, and how many compute threads a run uses.  Every number measured here is a fact
about one machine, so each run directory names the CPU it came from with these.
"""

from __future__ import annotations

import os
import platform
import time
from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@lru_cache(maxsize=None)
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: macOS, Windows)."""
    fields: dict[str, str] = {}
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # one processor is enough: the cores of one machine are alike here
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel lists them (x86 `flags`, Arm `Features`)."""
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Does this CPU multiply in bfloat16 in hardware?  On x86 that is AVX-512 BF16 or AMX-BF16.

    WHY the flags and not oneDNN's `_is_mkldnn_bf16_supported()`: that private op also says yes
    on AVX-512 CPUs without either (an AVX-512 Xeon), where bf16 is emulated and a CIFAR step
    runs 3-4x slower than fp32.  Arm CPUs with FEAT_BF16 are left at no: nobody has measured
    bf16 autocast against fp32 on one here, and `auto` must never pick the slower precision.
    """
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def cpu_isa(flags: frozenset[str] | None = None) -> str:
    """The widest vector instructions that matter for speed here: same-name CPUs (an 'AMD EPYC')
    differ by up to 7x per epoch between AVX2, AVX-512 and AVX-512 with native bf16."""
    flags = cpu_flags() if flags is None else flags
    if cpu_native_bf16(flags):
        return "AVX-512 BF16" if "avx512_bf16" in flags else "AMX-BF16"
    if "avx512f" in flags:
        return "AVX-512, no native bf16"
    if "avx2" in flags:
        return "AVX2"
    return platform.machine()


PROC_STAT = Path("/proc/stat")


def _cpu_times(cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) jiffies since boot of the CPUs `cpus`, from /proc/stat; None where there is
    none.  Only the CPUs this process may run on count: a container's host may be busy elsewhere."""
    try:
        lines = PROC_STAT.read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            total += sum(values)
            busy += sum(values) - values[3] - values[4]
    return (busy, total) if total else None


def busy_cores(interval: float = 0.25) -> float:
    """How many of our cores other work keeps busy right now: their busy fraction over a short
    sleep of ours, times their number.  0 where /proc/stat cannot be read."""
    cpus = allowed_cpus()
    before = _cpu_times(cpus)
    if before is None:
        return 0.0
    time.sleep(interval)
    after = _cpu_times(cpus)
    if after is None or after[1] <= before[1]:
        return 0.0
    return (after[0] - before[0]) / (after[1] - before[1]) * len(cpus)


def auto_threads(cores: int, busy: float) -> int:
    """train.threads=0: one thread per core that other work leaves free, at least one.

    WHY not simply every core (torch's default): each parallel region of torch waits for its
    slowest thread, and a thread whose core another process holds is the slowest by a whole
    time slice; on a busy 2-core machine 2 threads measured several times slower than 1
    (README, Threads)."""
    return max(1, min(cores, cores - round(busy)))


def allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))  # a container or taskset may grant fewer than cpu_count
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def hardware(threads: int | None = None, device: str = "auto") -> str:
    """'CPU model (ISA), N cores, M threads' or the GPU's name: which machine a number came from.
    `threads`: the compute threads, when not torch's (NumPy's BLAS); device="cpu": a CPU-only run."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu_name()} ({cpu_isa()}), {os.cpu_count()} cores, {threads or torch.get_num_threads()} threads"
