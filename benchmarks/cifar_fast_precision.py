"""Is bf16 autocast worth it for cifar-fast on this machine?  Times training steps of the
recipe's net (batch 1,024 of the JPEG CIFAR-10, through deepstudy's own data path: gather,
crop, flip, normalise, channels-last) in fp32 and in bf16, alternating in one process, plus a
validation pass of 5,000 images with each test-time augmentation, and prints the ratio.

    DEEPSTUDY_DATA=/work/shared/datasets python benchmarks/cifar_fast_precision.py [--steps 6] [--widths 64,256,256]

bf16 pays off on CPUs with native bf16 arithmetic (AVX-512 BF16, AMX) and GPUs; elsewhere it
is emulated and far slower than fp32 (10-17x on a Zen 3 EPYC with AVX2 only), which is why the
recipes ask for train.precision=auto.  Run it on a quiet machine (under `cpu measure` here).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn

from deepstudy.config import OptimConfig  # noqa: E402
from deepstudy.tasks import resolve  # noqa: E402
from deepstudy import recipes
from deepstudy.data import DataContext, load_dataset
from deepstudy.data.root import data_root
from deepstudy.models import create_model
from deepstudy.train.loop import autocast
from deepstudy.train.optim import make_optimizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6, help="timed steps per precision (after 2 untimed)")
    p.add_argument("--widths", default="64,256,256", help="model.widths")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    cfg = resolve(recipes.get_recipe("cifar-fast"), "full", {"data.variant": "jpeg"}).as_dict()
    device = torch.device("cpu")
    t0 = time.perf_counter()
    data = load_dataset("cifar10", DataContext(root=data_root(args.data_dir)),
                        **{k: v for k, v in cfg["data"].items() if k != "name"})
    print(f"data ready in {time.perf_counter() - t0:.1f}s; {torch.get_num_threads()} threads; widths {widths}", flush=True)

    step_time, eval_time = {}, {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = create_model("fastnet_cifar", (3, 32, 32), 10, widths=widths).to(memory_format=torch.channels_last)
        optimizer = make_optimizer(model.parameters(), OptimConfig(**cfg["optim"]))
        criterion = nn.CrossEntropyLoss(label_smoothing=0.2)
        batches = data.train_batches(cfg["train"]["batch_size"], torch.Generator().manual_seed(0), True)
        times = []
        for _ in range(args.steps + 2):
            t = time.perf_counter()
            x, y = next(batches)
            with autocast(device, precision):
                loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - t)
        timed = sorted(times[2:])
        step_time[precision] = timed[len(timed) // 2]
        model.eval()
        for tta in ("none", "flip", "flip_translate"):
            model.tta = tta
            t = time.perf_counter()
            with torch.inference_mode(), autocast(device, precision):
                for x, _ in data.eval_batches("val", 1000, True):
                    model(x)
            eval_time[precision, tta] = time.perf_counter() - t
        print(f"{precision}: {step_time[precision]:.3f}s per step (median of {args.steps}; min {timed[0]:.3f}, "
              f"max {timed[-1]:.3f}); validation of {data.size('val'):,} images: "
              + ", ".join(f"tta={tta} {eval_time[precision, tta]:.1f}s" for tta in ("none", "flip", "flip_translate")), flush=True)
    steps = -(-data.size("train") // cfg["train"]["batch_size"])
    print(f"bf16 / fp32 step time: {step_time['bf16'] / step_time['fp32']:.2f} "
          f"(bf16 is {step_time['fp32'] / step_time['bf16']:.2f}x as fast); an epoch of {steps} steps + flip-TTA "
          f"validation: fp32 ~{steps * step_time['fp32'] + eval_time['fp32', 'flip']:.0f}s, "
          f"bf16 ~{steps * step_time['bf16'] + eval_time['bf16', 'flip']:.0f}s")


if __name__ == "__main__":
    main()
