"""One training step of cifar-fast's net against one of airbench94's, alternating in one process
on the same batches: the step-time ratio of issue 20 (target: ours <= 0.90x the peer's).

    python benchmarks/cifar_fast_step_vs_airbench.py [--peer ../shared/peers/airbench94_cpu.py]
        [--batch 1024] [--steps 5] [--repeats 3] [--threads N] [--compile]

The peer is airbench94 itself, ported to the CPU in fp32 (../shared/peers/README.md): its
network (make_net), its optimiser (Nesterov SGD with the BatchNorm biases in their own group)
and its loss (label-smoothed cross-entropy summed over the batch), imported from its file and
used as it is, never copied.  Ours is what `deepstudy run cifar-fast` builds: fastnet_cifar from
the recipe's options, channels-last, the recipe's optimiser, and the loop's own loss
(train/loop.py's Supervised.loss), once in fp32 (the same arithmetic as the peer) and once at the
recipe's precision (train.precision=auto: bf16 where the CPU has it natively, else fp32 again).

A step is forward, loss, backward and the optimiser's update of one batch (the data pipeline is
left out: both sides build their batches once an epoch).  Each repeat times `--steps` steps of
every side in turn, after two untimed steps per side (oneDNN builds its kernels on the first),
so a change in the machine's load hits all sides alike; the medians and ratios are printed.
On a shared machine read the ratios, not the seconds, and trust them only when the repeats agree.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn

from deepstudy import machine
from deepstudy.models import create_model
from deepstudy.recipes import get_recipe
from deepstudy.tasks import resolve
from deepstudy.train.loop import Supervised, resolve_precision
from deepstudy.train.optim import make_optimizer

DEFAULT_PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "airbench94_cpu.py"


def load_peer(path: Path):
    spec = importlib.util.spec_from_file_location("airbench94_cpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the net and its parts; its training runs only as __main__
    return module


def peer_side(peer, batch_size: int):
    """airbench94's net, optimiser and loss, built as its main() builds them."""
    hyp = peer.hyp["opt"]
    model = peer.make_net()
    kilostep_scale = 1024 * (1 + 1 / (1 - hyp["momentum"]))
    lr = hyp["lr"] / kilostep_scale
    wd = hyp["weight_decay"] * batch_size / kilostep_scale
    lr_biases = lr * hyp["bias_scaler"]
    norm_biases = [p for k, p in model.named_parameters() if "norm" in k and p.requires_grad]
    other = [p for k, p in model.named_parameters() if "norm" not in k and p.requires_grad]
    optimizer = torch.optim.SGD([dict(params=norm_biases, lr=lr_biases, weight_decay=wd / lr_biases),
                                 dict(params=other, lr=lr, weight_decay=wd / lr)], momentum=hyp["momentum"], nesterov=True)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=hyp["label_smoothing"], reduction="none")

    def step(x, y):
        loss = loss_fn(model(x), y).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.train()
    return step


def our_side(precision: str, batch_size: int, compiled: bool = False):
    """cifar-fast's net, optimiser and loss at `precision`, as `deepstudy run cifar-fast` builds them
    (with `compiled`, the net's forward and backward through torch.compile: measured 2026-12-06 on
    an AVX-512-BF16 EPYC, no faster in fp32 and slower in bf16, so the loop does not compile)."""
    cfg = resolve(get_recipe("cifar-fast"), "full", {"train.precision": precision, "train.batch_size": batch_size})
    model = create_model(cfg.model.name, (3, 32, 32), 10, **cfg.model.options)
    objective = Supervised(model, None, cfg.train)  # makes the model channels-last, as the loop does
    optimizer = make_optimizer(model.parameters(), cfg.optim)
    generator = torch.Generator().manual_seed(0)
    net = torch.compile(model) if compiled else model

    def step(x, y):
        loss, _ = objective.loss(net, (x, y), generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.train()
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="airbench94_cpu.py")
    ap.add_argument("--batch", type=int, default=1024, help="images per step (airbench's 1,024)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per side per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--compile", action="store_true",
                    help="also our sides through torch.compile (compiled during the untimed warm-up steps)")
    args = ap.parse_args()
    if not args.peer.is_file():
        raise SystemExit(f"error: no peer at {args.peer} (--peer PATH: airbench94_cpu.py from ../shared/peers)")
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    auto = resolve_precision("auto", cpu)
    print(f"torch {torch.__version__}, {machine.cpu_name()} ({machine.cpu_isa()}), {torch.get_num_threads()} threads; "
          f"train.precision=auto takes {auto} here; batch {args.batch}", flush=True)

    torch.manual_seed(0)
    peer = load_peer(args.peer)
    sides = {"airbench94 (fp32)": peer_side(peer, args.batch), "cifar-fast fp32": our_side("fp32", args.batch)}
    if auto != "fp32":
        sides[f"cifar-fast {auto}"] = our_side(auto, args.batch)
    if args.compile:
        for precision in dict.fromkeys(("fp32", auto)):
            sides[f"cifar-fast {precision} compiled"] = our_side(precision, args.batch, compiled=True)
    # one batch both sides see: normalised-looking images, channels-last as both feed them
    x = torch.randn(args.batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    for step in sides.values():
        for _ in range(2):
            step(x, y)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(args.repeats):
        for name, step in sides.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(x, y)
            times[name].append((time.perf_counter() - t0) / args.steps)
        print(f"repeat {r + 1}: " + "  ".join(f"{name} {times[name][-1]:.3f}s" for name in sides), flush=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["airbench94 (fp32)"]
    print(f"\nseconds per step of {args.batch} (median of {args.repeats} repeats x {args.steps} steps), "
          "and the ratio to the peer's (< 1: ours is faster)")
    for name, t in median.items():
        print(f"  {name:29s} {t:7.3f} s   {t / base:5.2f}x")


if __name__ == "__main__":
    main()
