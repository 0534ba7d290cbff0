"""Does this machine compute bf16 natively?  Times training steps of the CIFAR nets in fp32 and
in bf16 autocast, alternating in one process, on random batches (the data plays no part), and
prints what `train.precision=auto` would choose here.

    python benchmarks/bf16_steps.py [--batch 256] [--steps 3]

On a CPU with AVX-512 BF16 or AMX bf16 runs about twice as fast as fp32; on one without it
oneDNN emulates bf16 and a step is an order of magnitude slower.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from deepstudy import machine
from deepstudy.models import create_model
from deepstudy.train.loop import autocast, native_bf16, resolve_precision

NETS = {"cnn_bn": {"channels": (48, 96, 192)}, "fastnet_cifar": {"widths": (64, 256, 256)}}


def step_seconds(net, opt, x, y, precision: str, steps: int) -> float:
    """Best of `steps` timed steps, after one untimed (it builds oneDNN's kernels)."""
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with autocast(torch.device("cpu"), precision):
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {machine.cpu_name()} ({machine.cpu_isa()}), CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads; native bf16: {native_bf16(cpu)}", flush=True)
    for name, kw in NETS.items():
        torch.manual_seed(0)
        net = create_model(name, (3, 32, 32), 10, **kw).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (args.batch,))
        t = {p: step_seconds(net, opt, x, y, p, args.steps) for p in ("fp32", "bf16")}
        print(f"{name:14s} fp32 {t['fp32']:.3f} s  bf16 {t['bf16']:.3f} s per step of {args.batch}: "
              f"bf16/fp32 = {t['bf16'] / t['fp32']:.2f}", flush=True)
    print(f"train.precision=auto takes {resolve_precision('auto', cpu)} on this CPU")


if __name__ == "__main__":
    main()
