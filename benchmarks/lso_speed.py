"""LSO speed: 100 generations with up to 20 restarts each, batched, against an
unbatched loop over restarts, on the 14x14 models of ``studies/lso-paper.yaml``.

    python benchmarks/lso_speed.py [--rounds 3] [--threads 1] [--runs DIR] [--json out.json]

Cases (each 10 targets x 10 samples = 100 generations, threshold 0.001,
at most 20 restarts of at most 200 steps per generation):

* ``paper-ae20``  -- ``lso-ae-latent20`` decoder, the paper's normalized step
  (rate 0.5), starts from the Gaussian fitted to the training codes.
* ``vae20-adam``  -- ``lso-vae-latent20`` decoder, prior start, Adam (lr 0.05),
  projection onto the prior's typical shell.

Contenders, same composed network, same start distribution, same update rule:

* ``aelab batched``: :func:`aelab.lso.optimize` with ``parallel = 20``: all
  restarts of all generations in one (2,000, d) batch; a generation stops as
  soon as one of its restarts succeeds.
* ``aelab batched p=5``: the same with 5 restarts per generation at a time,
  failed ones replaced by new starts (the CLI default).
* ``unbatched loop``: a minimal hand-written loop, one restart at a time
  (one (1, d) latent, ``torch.optim.Adam`` or the normalized step written
  inline), restarts of a generation run one after the other until one
  succeeds or 20 have failed.  This is what one writes without batching.

The models are trained once (or reused) under ``--runs`` (default
``runs/bench-lso``).  Rounds alternate the order of the contenders; the
reported time is the median over rounds.  Targets (issue 6): batched <= 10 s
and >= 10x the unbatched loop.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from aelab import lso
from aelab.lso.study import train_or_reuse

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "paper-ae20": dict(decoder="lso-ae-latent20", options=dict(optimizer="normalized", lr=0.5, start="gaussian")),
    "vae20-adam": dict(decoder="lso-vae-latent20", options=dict(optimizer="adam", lr=0.05, start="prior", shell=True)),
}
STEPS, RESTARTS, THRESHOLD = 200, 20, 1e-3


def unbatched(setup: lso.LSOSetup, targets: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """One restart at a time: the minimal loop without batching."""
    o, model, reg = setup.options, setup.model, setup.regularizer
    gen = torch.Generator().manual_seed(seed)
    success, total_steps = np.zeros(len(targets), bool), 0
    for i, t in enumerate(torch.as_tensor(targets, dtype=torch.float32)):
        for _ in range(RESTARTS):
            z = reg.project(setup.start.sample(1, gen)).requires_grad_(True)   # (1, d)
            adam = torch.optim.Adam([z], lr=o.lr) if o.optimizer == "adam" else None
            for step in range(STEPS + 1):
                err = (model.probs(z) - t).pow(2).mean()
                if err.item() <= THRESHOLD or step == STEPS:
                    break
                grad, = torch.autograd.grad(err, z)
                with torch.no_grad():
                    if adam is not None:
                        z.grad = grad
                        adam.step()
                    else:  # the paper's Algorithm 3: z += D * C / S, C = -rate * E
                        s = grad.pow(2).sum()
                        if s > 0:
                            z += grad * (-o.lr * err / s)
                    z.copy_(reg.project(z))
                total_steps += 1
            if err.item() <= THRESHOLD:
                success[i] = True
                break
    return success, total_steps


def batched(setup: lso.LSOSetup, targets: np.ndarray, seed: int, parallel: int) -> tuple[np.ndarray, int]:
    res = lso.optimize(setup.model, targets, setup.start, setup.make_optimizer(), setup.regularizer,
                       threshold=THRESHOLD, steps=STEPS, restarts=RESTARTS, parallel=parallel, seed=seed)
    return res.success, int(res.total_steps.sum())


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def proc_stat() -> list[float]:
    """The machine's aggregate CPU counters (/proc/stat); empty if unavailable."""
    try:
        with open("/proc/stat") as f:
            return [float(x) for x in f.readline().split()[1:]]
    except OSError:
        return []


def cpu_busy_since(start: list[float]) -> float:
    """Share of all CPUs busy since ``start`` (this script included); nan if unknown."""
    now = proc_stat()
    if not start or not now:
        return float("nan")
    d = [b - a for a, b in zip(start, now)]
    idle = d[3] + (d[4] if len(d) > 4 else 0.0)
    return 1.0 - idle / sum(d) if sum(d) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fewer stalls when shared)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-lso")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = train_or_reuse(ROOT / "configs" / "mnist14-classifier.yaml", args.runs)
    targets, _ = lso.target_matrix(range(10), 10, 10)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} threads; 100 generations, <= {RESTARTS} restarts x "
          f"{STEPS} steps, threshold {THRESHOLD}")
    report = {}
    for name, case in CASES.items():
        dec = train_or_reuse(ROOT / "configs" / f"{case['decoder']}.yaml", args.runs)
        setup = lso.prepare(clf.path, dec.path, lso.LSOOptions(**case["options"]))
        contenders = {"aelab batched": lambda s: batched(setup, targets, s, RESTARTS),
                      "aelab batched p=5": lambda s: batched(setup, targets, s, 5),
                      "unbatched loop": lambda s: unbatched(setup, targets, s)}
        times = {k: [] for k in contenders}
        outcome = {}
        cpu0 = proc_stat()
        for r in range(args.rounds):
            order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            for k in order:
                seconds, (success, steps) = timed(contenders[k], r)
                times[k].append(seconds)
                outcome[k] = (float(success.mean()), steps)
        busy = cpu_busy_since(cpu0)
        base = statistics.median(times["unbatched loop"])
        print(f"\n{name} ({case['decoder']}, {case['options']['optimizer']}); machine busy {busy:.0%} "
              f"(this script uses at most {args.threads / os.cpu_count():.0%})")
        print("| contender | median s | success | optimizer steps (last round) | speed-up vs unbatched |")
        print("|---|---:|---:|---:|---:|")
        for k in contenders:
            med = statistics.median(times[k])
            print(f"| {k} | {med:.2f} | {outcome[k][0]:.0%} | {outcome[k][1]:,} | {base / med:.1f}x |")
        report[name] = {k: {"seconds": times[k], "success": outcome[k][0], "steps": outcome[k][1]} for k in contenders}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
