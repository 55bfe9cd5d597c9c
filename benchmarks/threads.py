"""Threads on a busy machine: how torch's thread count and OpenMP's wait
policy shape aelab's speed when other processes share the CPU.

For each workload (a gradient epoch of configs/mnist-vae.yaml, GA
generations of configs/ga-conv-ae.yaml) and each machine state (idle, or
with as many busy-looping processes as there are CPUs), every setting runs
in a fresh child process (OpenMP reads its wait policy once, at start-up):

* ``1``            -- one torch thread
* ``N spin``       -- all CPUs, libgomp's default wait (300,000 spin rounds)
* ``N brief spin`` -- all CPUs, ``GOMP_SPINCOUNT=3000`` (aelab's default)
* ``N passive``    -- all CPUs, ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once)
* ``auto``         -- aelab's default: brief spin, and the CPUs others leave free

and the table reports each one's speed relative to ``1`` in the same state,
measured side by side.  Runs on a GPU machine too (the thread count then
only affects the host side).

    python benchmarks/threads.py [--seconds 6] [--repeats 3] [--json out.json]

Each cell is the median of ``--repeats`` measurements, taken in turns
(setting by setting, round by round), since single runs on a shared VM
swing by up to 2x.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, sys, tempfile, time
import aelab
kind, seconds = sys.argv[1], float(sys.argv[2])
out = tempfile.mkdtemp() + "/run"
if kind == "gradient":
    run = aelab.train("configs/mnist-vae.yaml", out=out, overrides=[
        "train.epochs=4", "eval.figures=false", "eval.max_samples=200"])
    epochs = sorted(r["seconds"] for r in run.history[1:])  # the first epoch pays lazy imports
    print(json.dumps({"value": epochs[len(epochs) // 2], "unit": "s/epoch", "threads": run.metrics["threads"]}))
else:
    run = aelab.train("configs/ga-conv-ae.yaml", out=out, overrides=[
        "train.method=ga", f"train.max_seconds={seconds}", "train.generations=10000000", "eval.figures=false"])
    print(json.dumps({"value": run.metrics["epochs_trained"] / run.metrics["seconds"], "unit": "gen/s",
                      "threads": run.metrics["threads"]}))
"""
SETTINGS = {  # name -> environment for the child
    "1": {"AELAB_THREADS": "1"},
    "N spin": {"AELAB_THREADS": "{n}", "GOMP_SPINCOUNT": "300000"},
    "N brief spin": {"AELAB_THREADS": "{n}"},
    "N passive": {"AELAB_THREADS": "{n}", "OMP_WAIT_POLICY": "PASSIVE"},
    "auto": {},
}


def burners(k: int) -> list[subprocess.Popen]:
    """``k`` processes that keep one CPU each busy."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def measure(kind: str, setting: str, seconds: float, n: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("AELAB_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env |= {k: v.format(n=n) for k, v in SETTINGS[setting].items()}
    done = subprocess.run([sys.executable, "-c", CHILD, kind, str(seconds)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise SystemExit(f"{kind} {setting}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=6.0, help="GA time budget per measurement")
    p.add_argument("--repeats", type=int, default=3, help="measurements per cell (the median is shown)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{n} CPUs; load before: {os.getloadavg()[0]:.2f} (1 min)")
    results = []
    for state, k in (("idle", 0), (f"{n} busy processes", n)):
        procs = burners(k)
        try:
            time.sleep(1.0 if k else 0.0)
            for kind in ("gradient", "ga"):
                rounds = [{s: measure(kind, s, args.seconds, n) for s in SETTINGS} for _ in range(args.repeats)]
                row = {s: _median([r[s] for r in rounds]) for s in SETTINGS}
                results.append({"state": state, "kind": kind, "load": os.getloadavg()[0], **row})
                _print_row(state, kind, row)
        finally:
            for proc in procs:
                proc.kill()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _median(results: list[dict]) -> dict:
    ordered = sorted(results, key=lambda r: r["value"])
    return ordered[len(ordered) // 2] | {"all": [round(r["value"], 3) for r in results]}


def _print_row(state: str, kind: str, row: dict) -> None:
    base = row["1"]["value"]
    faster = (lambda v: base / v) if row["1"]["unit"] == "s/epoch" else (lambda v: v / base)
    cells = [f"{s}: {r['value']:.3g} {r['unit']} ({faster(r['value']):.2f}x, {r['threads']} thr)"
             for s, r in row.items()]
    print(f"| {state} | {kind} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
