"""How many compute threads should a run use?  Times whole `deepstudy run` commands (start-up,
data, training, test, plots: what a user waits for) with 1 and 2 torch threads, with 2 threads
under OpenMP's passive wait policy, and with the default (`train.threads=0`: as many threads
as cores that other work leaves free), on a quiet machine and on one kept busy by other work,
all in one sitting, and prints each time beside the ratio to one thread.

    python benchmarks/threads.py [--recipes lenet5-mnist:2 trec-lstm:2] [--load 0 1 2] [--repeats 1]

RECIPE:EPOCHS pairs; --load N starts N busy-looping processes (one core each) for the loaded
rows.  How to read it: the machines are shared, so compare the ratios of one sitting, not the
seconds of two; a ratio far above 1 under load is the collapse of a parallel region that
waits for its slowest thread while another process holds that thread's core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deepstudy.machine import hardware

SETTINGS = [  # (label, threads, extra environment)
    ("1 thread", 1, {}),
    ("2 threads", 2, {}),
    ("2 threads, passive wait", 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("auto (the default)", 0, {}),  # train.threads=0: the cores other work leaves free
]


def run_once(recipe: str, epochs: int, threads: int, env_extra: dict, data_dir: str | None) -> tuple[float, int]:
    """Seconds of one whole command, and the torch threads it computed on (its config.json)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "deepstudy", "run", recipe, "--epochs", str(epochs), "--threads", str(threads),
               "--no-progress", "--out", str(Path(tmp) / "run")]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **env_extra})
        seconds = time.perf_counter() - t0
        return seconds, json.loads((Path(tmp) / "run" / "config.json").read_text())["threads"]


def busy(n: int) -> list[subprocess.Popen]:
    """n processes that keep one core each busy: the 'other work' on a shared machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", nargs="+", default=["lenet5-mnist:2", "trec-lstm:2"])
    ap.add_argument("--load", nargs="+", type=int, default=[0, 1, 2], help="busy processes: 0 = quiet")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--spin", nargs="*", type=int, default=[],
                    help="also 2 threads with GOMP_SPINCOUNT=N (libgomp: how long a waiting thread spins "
                         "before it sleeps; its default is 300000)")
    ap.add_argument("--data-dir", default=os.environ.get("DEEPSTUDY_DATA")
                    or str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    args = ap.parse_args()
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else None
    settings = SETTINGS + [(f"2 threads, spin {n}", 2, {"GOMP_SPINCOUNT": str(n)}) for n in args.spin]
    print(f"{hardware(threads=2, device='cpu')}; data root {data_dir or '(the package)'}", flush=True)
    print(f"{'load':>6}  {'recipe':<16} {'setting':<26} {'seconds':>8} {'vs 1 thread':>12}", flush=True)
    for load in args.load:
        others = busy(load)
        try:
            time.sleep(2 if load else 0)  # let the busy processes take their cores
            for spec in args.recipes:
                recipe, _, epochs = spec.partition(":")
                # interleaved repeats: a slow spell of the machine falls on every setting alike
                times = {label: [] for label, _, _ in settings}
                for _ in range(args.repeats):
                    for label, threads, env in settings:
                        times[label].append(run_once(recipe, int(epochs or 2), threads, env, data_dir))
                one = min(t for t, _ in times["1 thread"])
                for label, _, _ in settings:
                    best, used = min(times[label])
                    print(f"{('busy ' + str(load)) if load else 'quiet':>6}  {recipe:<16} {label:<26} "
                          f"{best:8.1f} {best / one:11.2f}x  ({used} threads used)", flush=True)
        finally:
            for p in others:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
