"""Study throughput and overhead.

1. Trials per hour with 1 and 2 worker processes on the same grid (the
   optimizer lesson's digits autoencoder at its 50 epochs, 16 configurations);
   target: 2 workers >= 1.8x the trials per hour of 1 worker on a 2-core
   machine.  Wall time includes starting the worker processes.
2. The study machinery's own cost per trial beyond the trial's training:
   wall time of the worker loop minus the time spent inside ``aelab.train``
   (measured in the same process), divided by the trials; target < 0.3 s.

    python benchmarks/study_throughput.py [--epochs 50] [--configs 16]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

import aelab.api
from aelab.studies.run import prepare, run_workers, warm_up
from aelab.studies.runner import create_or_load

ROOT = Path(__file__).resolve().parents[1]


def study_spec(epochs: int, configs: int) -> dict:
    lrs = [round(0.0005 * (i + 1), 5) for i in range(configs // 2)]
    return {"name": "bench", "base": str(ROOT / "configs" / "digits-ae.yaml"),
            "set": [f"train.epochs={epochs}"],
            "space": {"train.optimizer": ["adam", "rmsprop"], "train.lr": lrs},
            "objectives": {"recon_mse": "min"}, "repeats": 1, "strategy": "grid"}


def timed_study(spec: dict, workers: int, folder: Path) -> float:
    """Wall seconds of the worker loop(s) for a fresh study."""
    ctx = prepare(spec, folder)
    folder.mkdir(parents=True)
    create_or_load(ctx)
    warm_up(ctx)  # one-time imports and data load: outside the clock for both
    start = time.perf_counter()
    run_workers(ctx, workers)
    return time.perf_counter() - start


def overhead(spec: dict, folder: Path) -> tuple[float, float, int]:
    """(loop seconds, seconds inside aelab.train, trials) for one in-process worker."""
    inside, original = [0.0], aelab.api.train

    def train(*a, **k):
        t = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            inside[0] += time.perf_counter() - t

    aelab.api.train = train
    try:
        loop = timed_study(spec, 1, folder)
    finally:
        aelab.api.train = original
    return loop, inside[0], sum(p.is_dir() for p in (folder / "runs").iterdir())


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__}; Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--configs", type=int, default=16)
    args = ap.parse_args()
    spec = study_spec(args.epochs, args.configs)
    tmp = Path(tempfile.mkdtemp(prefix="aelab-study-bench-"))
    try:
        one = timed_study(spec, 1, tmp / "w1")
        two = timed_study(spec, 2, tmp / "w2")
        loop, inside, n = overhead(spec, tmp / "ovh")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_hour = lambda s: args.configs / s * 3600
    print(f"machine: {machine()}")
    print(f"grid: {args.configs} configurations of the digits AE, {args.epochs} epochs each")
    print("| workers | wall s | trials/hour |\n|---|---|---|")
    print(f"| 1 | {one:.1f} | {per_hour(one):.0f} |\n| 2 | {two:.1f} | {per_hour(two):.0f} |")
    ratio = one / two
    print(f"speed-up 2 vs 1 workers: {ratio:.2f}x (target >= 1.8x: {'met' if ratio >= 1.8 else 'NOT met'})")
    per_trial = (loop - inside) / n
    print(f"overhead per trial beyond aelab.train: {per_trial * 1000:.0f} ms "
          f"(loop {loop:.1f} s, inside train {inside:.1f} s, {n} trials; target < 300 ms: "
          f"{'met' if per_trial < 0.3 else 'NOT met'})")


if __name__ == "__main__":
    main()
