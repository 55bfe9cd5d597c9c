"""What cluster scale costs: Ray start-up and the per-trial overhead of each
executor and storage, against the local-journal baseline measured in the
same run.

Every set-up runs the same study of very short trials (the digits AE on a
few hundred samples, one epoch) with one trial at a time, so the difference
in seconds per trial is the machinery's overhead, not training:

- local worker + journal file (the default; the baseline),
- local worker + PostgreSQL (needs a server: ``AELAB_TEST_POSTGRES_URL``,
  e.g. ``bash .ci/postgres.sh .venv/bin/python benchmarks/cluster_overhead.py``),
- Ray task per trial (a local Ray instance) + journal file,
- Ray task per trial + PostgreSQL.

Ray's start-up (``ray.init`` of a local instance, the first task on a fresh
worker process: imports, data) is timed separately.

    python benchmarks/cluster_overhead.py [--trials 12]
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import torch

from aelab.studies.executors import Executor, LocalExecutor, RayExecutor, warm_up
from aelab.studies.run import prepare
from aelab.studies.runner import create_or_load

ROOT = Path(__file__).resolve().parents[1]


def study_spec(trials: int) -> dict:
    """A grid of ``trials`` one-epoch trials that differ only in learning rate."""
    return {"name": f"overhead-{uuid.uuid4().hex[:8]}", "base": str(ROOT / "configs" / "digits-ae.yaml"),
            "set": ["train.epochs=1", "data.samples=300"],
            "space": {"train.lr": [round(0.001 * (i + 1), 4) for i in range(trials)]},
            "objectives": {"recon_mse": "min"}, "repeats": 1, "strategy": "grid"}


def per_trial(spec: dict, executor: Executor, folder: Path, storage: str | None) -> float:
    """Seconds per trial of ``executor.run`` on a fresh study (creation outside the clock)."""
    ctx = prepare(spec, folder, storage)
    folder.mkdir(parents=True)
    create_or_load(ctx)
    warm_up(ctx)
    start = time.perf_counter()
    executor.run(ctx)
    return (time.perf_counter() - start) / ctx.budget


def ray_start_up(ray) -> tuple[float, float]:
    """(seconds for ray.init of a local instance, seconds for its first task)."""
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    init = time.perf_counter() - start

    @ray.remote(num_cpus=1)
    def first():
        import aelab.studies.runner  # noqa: F401  (what a trial task imports)
        return os.getpid()

    start = time.perf_counter()
    ray.get(first.remote())
    return init, time.perf_counter() - start


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    load = os.getloadavg()[0]
    return (f"{cpu}; {os.cpu_count()} cores; load average {load:.1f} at start; torch {torch.__version__}; "
            f"Python {platform.python_version()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    args = ap.parse_args()
    import ray
    pg = os.environ.get("AELAB_TEST_POSTGRES_URL")
    print(f"machine: {machine()}; Ray {ray.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="aelab-cluster-bench-"))
    rows: list[tuple[str, float]] = []
    try:
        spec = lambda: study_spec(args.trials)  # noqa: E731  a fresh study name per set-up
        local = LocalExecutor(1, threads=1)
        rows.append(("local worker + journal", per_trial(spec(), local, tmp / "lj", None)))
        if pg:
            rows.append(("local worker + PostgreSQL", per_trial(spec(), local, tmp / "lp", pg)))
        init, first = ray_start_up(ray)
        remote = RayExecutor(tasks=1, cpus=1)
        rows.append(("Ray task + journal", per_trial(spec(), remote, tmp / "rj", None)))
        if pg:
            rows.append(("Ray task + PostgreSQL", per_trial(spec(), remote, tmp / "rp", pg)))
        start = time.perf_counter()
        ray.shutdown()
        down = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Ray start-up: ray.init of a local instance {init:.1f} s, first task on a fresh worker "
          f"{first:.1f} s, shutdown {down:.1f} s")
    base = rows[0][1]
    print(f"{args.trials} one-epoch trials, one at a time\n")
    print("| set-up | s per trial | vs local + journal | overhead per trial |\n|---|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / base:.2f}x | {(seconds - base) * 1000:+.0f} ms |")
    if not pg:
        print("\n(PostgreSQL rows skipped: set AELAB_TEST_POSTGRES_URL, e.g. run under `bash .ci/postgres.sh`)")


if __name__ == "__main__":
    main()
