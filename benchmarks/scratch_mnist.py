"""The NumPy-from-scratch MNIST recipes against the same networks in PyTorch, in one process,
alternating, same machine:

  softmax  `deepstudy run scratch-softmax-mnist` (20 epochs: lr 0.1, batch 100), the whole run
           from reading the files to the written report; its 20 training epochs (with a
           validation pass each) are timed inside it.  Target: 20 epochs <= 20 s.
           Baseline: the same softmax regression trained by PyTorch on the same batches.
  mlp      the training of scratch-mlp-mnist (784-256-128-10 ReLU, SGD momentum 0.9, cosine
           decay, batch 100, 10 epochs, a validation pass per epoch):
             (a) NumPy   deepstudy.scratch.train.fit, as `deepstudy run` calls it (1 BLAS thread)
             (b) PyTorch the same network with the same initial weights, the same batches in the
                 same order (drawn from the same generator), the same schedule and validation
             (c) NumPy with 2 BLAS threads, to show what the 1-thread choice costs when the
                 machine is otherwise idle
           Target: a/b <= 2.

    python benchmarks/scratch_mnist.py [--repeats 2] [--mlp-epochs 10]

Timing is wall-clock on whatever else the machine is doing: run it on a quiet machine, and
read the spread between repeats before trusting a ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from deepstudy.config import OptimConfig  # noqa: E402
from deepstudy.tasks import resolve  # noqa: E402
from deepstudy import api, recipes
from deepstudy.scratch.data import Source, load_dataset
from deepstudy.scratch.layers import Linear
from deepstudy.scratch.models import create_model
from deepstudy.scratch.optim import make_optimizer, cosine_lr
from deepstudy.scratch.train import evaluate, fit, loss_for
from deepstudy.tasks.scratch import BLAS_THREADS


def quiet(msg):
    pass


def to_torch(model) -> torch.nn.Sequential:
    """The same network in PyTorch, with the NumPy network's initial weights."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, Linear):
            lin = torch.nn.Linear(*layer.W.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.W.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.b.copy()))
            layers.append(lin)
        else:
            layers.append({"ReLU": torch.nn.ReLU, "Tanh": torch.nn.Tanh, "Sigmoid": torch.nn.Sigmoid}[repr(layer)]())
    return torch.nn.Sequential(*layers)


def torch_fit(net, data, cfg, rng) -> float:
    """scratch.train.fit's work, in PyTorch: same batches, same schedule, same bookkeeping."""
    t = cfg["train"]
    epochs, bs = t["epochs"], t["batch_size"]
    opt = torch.optim.SGD(net.parameters(), lr=cfg["optim"]["lr"], momentum=cfg["optim"]["momentum"])
    total, step = epochs * -(-data.size("train") // bs), 0
    for _ in range(epochs):
        loss_sum, correct = 0.0, 0
        for x, y in data.batches("train", bs, np.float32, rng):
            if cfg["schedule"]["name"] == "cosine":
                opt.param_groups[0]["lr"] = cosine_lr(cfg["optim"]["lr"], 0.0, step, total)
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            out = net(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
        with torch.inference_mode():
            outs = torch.cat([net(torch.from_numpy(x)) for x, _ in data.batches("val", 1000, np.float32)])
            F.cross_entropy(outs, torch.from_numpy(data.val.y)).item()
    with torch.inference_mode():
        outs = torch.cat([net(torch.from_numpy(x)) for x, _ in data.batches("test", 1000, np.float32)])
    return (outs.argmax(1).numpy() == data.test.y).mean()


def setup(name: str, epochs: int | None = None):
    cfg = resolve(recipes.get_recipe(name), "quick", {"train.epochs": epochs} if epochs else {}).as_dict()
    data = load_dataset("mnist", Source(Path("/nonexistent"), cfg["train"]["seed"], quiet),
                        **{k: v for k, v in cfg["data"].items() if k != "name"})
    return cfg, data


def numpy_run(cfg, data, threads: int) -> tuple[float, float]:
    seed = cfg["train"]["seed"]
    model = create_model(cfg["model"]["name"], data.in_features, 10, np.random.default_rng([seed, 1]),
                         **{k: v for k, v in cfg["model"].items() if k != "name"})
    with threadpool_limits(limits=threads, user_api="blas"):
        t0 = time.perf_counter()
        t = cfg["train"]
        fit(model, loss_for(data), make_optimizer(OptimConfig(**cfg["optim"])), data, epochs=t["epochs"], batch_size=t["batch_size"],
            rng=np.random.default_rng([seed, 2]), schedule=cfg["schedule"]["name"], log=quiet)
        seconds = time.perf_counter() - t0
        return seconds, evaluate(model, data, "test")["accuracy"]


def torch_run(cfg, data) -> tuple[float, float]:
    seed = cfg["train"]["seed"]
    model = create_model(cfg["model"]["name"], data.in_features, 10, np.random.default_rng([seed, 1]),
                         **{k: v for k, v in cfg["model"].items() if k != "name"})
    net = to_torch(model)
    t0 = time.perf_counter()
    acc = torch_fit(net, data, cfg, np.random.default_rng([seed, 2]))
    return time.perf_counter() - t0, acc


def recipe_run(work: Path, i: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    r = api.run("scratch-softmax-mnist", out=work / f"softmax{i}", progress=False, log=quiet)
    return time.perf_counter() - t0, r.metrics["train_seconds"], r.metrics["test"]["accuracy"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--mlp-epochs", type=int, default=None, help="default: the recipe's (10)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deepstudy-bench-"))
    soft_cfg, soft_data = setup("scratch-softmax-mnist")
    mlp_cfg, mlp_data = setup("scratch-mlp-mnist", args.mlp_epochs)
    print(f"numpy {np.__version__}, torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"NumPy recipes use {BLAS_THREADS} BLAS thread(s); {args.repeats} repeats")

    rows: dict[str, list[tuple[float, float]]] = {}

    def record(key, seconds, acc):
        rows.setdefault(key, []).append((seconds, acc))
        print(f"  {key:<34} {seconds:7.2f} s  test accuracy {100 * acc:.2f}%", flush=True)

    for rep in range(args.repeats):
        print(f"repeat {rep + 1}")
        wall, train_s, acc = recipe_run(work, rep)
        record("softmax: deepstudy run (whole run)", wall, acc)
        record("softmax: its 20 training epochs", train_s, acc)
        record("softmax: PyTorch, same batches", *torch_run(soft_cfg, soft_data))
        record("mlp (a): NumPy, 1 BLAS thread", *numpy_run(mlp_cfg, mlp_data, 1))
        record("mlp (b): PyTorch, same batches", *torch_run(mlp_cfg, mlp_data))
        record("mlp (c): NumPy, 2 BLAS threads", *numpy_run(mlp_cfg, mlp_data, 2))

    med = {k: statistics.median(s for s, _ in v) for k, v in rows.items()}
    print()
    print(f"{'':36}{'median s':>10}{'all runs':>20}{'test acc':>10}")
    for k, v in rows.items():
        print(f"{k:<36}{med[k]:>10.2f}{', '.join(f'{s:.2f}' for s, _ in v):>20}"
              f"{100 * statistics.mean(a for _, a in v):>9.2f}%")
    print()
    soft = med["softmax: its 20 training epochs"]
    print(f"softmax: 20 epochs in {soft:.1f} s (target <= 20 s); NumPy / PyTorch = "
          f"{soft / med['softmax: PyTorch, same batches']:.2f}")
    ratio = med["mlp (a): NumPy, 1 BLAS thread"] / med["mlp (b): PyTorch, same batches"]
    print(f"mlp: NumPy / PyTorch = {ratio:.2f} (target <= 2); with 2 BLAS threads "
          f"{med['mlp (c): NumPy, 2 BLAS threads'] / med['mlp (b): PyTorch, same batches']:.2f}")


if __name__ == "__main__":
    main()
