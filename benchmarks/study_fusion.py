"""Whole studies, fused against run by run: ``aelab study run`` with and
without ``--no-fuse``, side by side in one process (issue 17's targets).

    python benchmarks/study_fusion.py                       # the three cases below
    python benchmarks/study_fusion.py --case optimizers --rounds 2
    python benchmarks/study_fusion.py --case seeds --seeds 64 --epochs 20

Cases:

* ``optimizers``: ``studies/optimizers.yaml`` as shipped (8 configurations x
  3 seeds of the optimizer lesson's autoencoder, 50 epochs).  Target 5x.
* ``hidden-layers``: ``studies/hidden-layers.yaml`` as shipped (three
  architectures, each fused over its 3 seeds, 150 epochs).  Target 2.5x.
* ``seeds``: ``--seeds`` seeds of configs/mnist-hidden3.yaml as one grid over
  ``train.seed`` (``--epochs`` each; the trials per hour of each way).
  Target 10x for 64 seeds.

Each arm is the whole study -- creating it, training every run, writing
every run directory (checkpoints, metrics, report) and the study's outputs
-- into a fresh directory, timed by the wall clock.  Rounds alternate which
arm goes first, so drift in the machine's load hits both alike; the load
average is printed before and after each arm.  ``--check`` also compares
every trial's per-seed metrics between the arms (bitwise at one thread;
with more, the last bits of a sum may differ).  The device is detected
(CUDA when present), so the script runs unchanged on a GPU, where fused
groups are as large as memory allows.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aelab.studies import run_study  # noqa: E402
from aelab.studies.spec import load_study_spec  # noqa: E402,F401 (validates the shipped files first)

CASES = ("optimizers", "hidden-layers", "seeds")


def study_of(case: str, args) -> dict | Path:
    if case == "seeds":
        return {"name": "seeds", "base": str(ROOT / "configs" / "mnist-hidden3.yaml"),
                "set": [f"train.epochs={args.epochs}"], "space": {"train.seed": list(range(args.seeds))},
                "objectives": {"recon_mse": "min"}, "repeats": 1, "strategy": "grid"}
    return ROOT / "studies" / f"{case}.yaml"


def arm(study, fuse: bool, scratch: Path) -> tuple[float, object]:
    out = scratch / ("fused" if fuse else "alone")
    shutil.rmtree(out, ignore_errors=True)
    before = os.getloadavg()[0]
    start = time.perf_counter()
    result = run_study(study, out=out, fuse=fuse)
    seconds = time.perf_counter() - start
    print(f"    {'fused' if fuse else 'run by run':>10}: {seconds:7.1f} s   "
          f"(load {before:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    return seconds, result


def epoch_seconds(result) -> float:
    """The study's time in training epochs: the sum of its runs' ``seconds``
    (a fused epoch's wall time is shared out among its members)."""
    return sum(m.get("seconds", 0.0) for r in result.rows for m in r.per_seed)


def largest_gap(a, b) -> float:
    """Largest relative difference of any per-seed metric between two results."""
    gap = 0.0
    other = {r.config: r.per_seed for r in b.rows}
    for r in a.rows:
        for m, n in zip(r.per_seed, other.get(r.config, [])):
            for k, v in m.items():
                w = n.get(k)
                if k in ("seconds", "threads") or w is None or not (math.isfinite(v) and math.isfinite(w)):
                    continue
                gap = max(gap, abs(v - w) / max(abs(w), 1e-30))
    return gap


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=CASES, action="append", help="default: all three")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--seeds", type=int, default=64)
    p.add_argument("--epochs", type=int, default=20, help="epochs of each run in the seeds case")
    p.add_argument("--check", action="store_true", help="compare the arms' per-seed metrics")
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.case or CASES:
            study = study_of(case, args)
            print(f"{case}:", flush=True)
            times = {True: [], False: []}
            for r in range(args.rounds):
                for fuse in ((True, False) if r % 2 == 0 else (False, True)):
                    seconds, result = arm(study, fuse, Path(tmp))
                    times[fuse].append(seconds)
                    if fuse:
                        fused_result = result
                    else:
                        alone_result = result
            fused, alone = min(times[True]), min(times[False])
            trials = len(fused_result.rows)
            print(f"  {case}: run by run {alone:.1f} s, fused {fused:.1f} s -> {alone / fused:.2f}x "
                  f"({trials / alone * 3600:,.0f} -> {trials / fused * 3600:,.0f} trials per hour)")
            ea, ef = epoch_seconds(alone_result), epoch_seconds(fused_result)
            print(f"  {case}, the training epochs alone (last round): {ea:.1f} s -> {ef:.1f} s -> {ea / ef:.2f}x; "
                  f"the rest (evaluation, figures, run files, storage) {times[False][-1] - ea:.1f} s "
                  f"and {times[True][-1] - ef:.1f} s")
            if args.check:
                print(f"  largest relative gap between the arms' metrics: {largest_gap(fused_result, alone_result):.1e}")


if __name__ == "__main__":
    main()
