"""The whole demo command, not only its epochs: ``aelab train CONFIG --out DIR``
followed by ``aelab report DIR`` (what ``make demo`` runs), each as a child
process.

    python benchmarks/whole_command.py [--config configs/mnist-vae.yaml]
        [--set train.epochs=N ...] [--repeats 3] [--src DIR ...] [--json out.json]

For every run it measures

* the wall time of both commands and the CPU time of the children
  (``resource.getrusage(RUSAGE_CHILDREN)``, user + system);
* from the run's ``history.csv``: the sum of the epochs' ``seconds``, the
  first epoch and the slowest one;
* the ratio **whole wall time / sum of epoch seconds** (target: at most 1.25x
  on a quiet machine);
* a breakdown by phase.  The child runs the ordinary CLI entry point
  (``aelab.__main__.main``) behind a thin wrapper (``--child``) that imports
  aelab's heavy modules first (timed as ``imports``) and wraps a handful of
  functions with a clock: data loading, model building, optimizer
  construction, the training loop, per-epoch checkpoint and history writes,
  final weights, evaluation metrics, figures, report.md, report.html.
  ``python start/exit`` is the wall time outside the wrapper (interpreter
  start-up and teardown), ``cli, config, rest`` what is left inside it (CLI
  parsing, config validation, run-directory set-up, printing the metrics).
  The clocks cost microseconds per call.

``--src 'DIR [NAME=VALUE ...]'`` (repeatable) benchmarks a source tree of
aelab (for example ``git archive HEAD src | tar -x -C /tmp/before``, then
``--src /tmp/before/src --src src``) through ``PYTHONPATH``, with the given
environment variables set (``--src 'src OMP_WAIT_POLICY=PASSIVE'``); the
variants take turns, run by run, so a busy phase of the machine hits all of
them.  The load average and the CPU other processes used
during each run are printed: only compare figures from the same session.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mnist-vae.yaml"
TARGET = 1.25
PHASES = ["imports", "data", "build", "optimizer", "epochs", "checkpoints", "history.csv", "loop other",
          "weights", "evaluation", "figures", "report.md", "report.html", "cli, config, rest", "python start/exit"]


# ------------------------------------------------------------------ child side
# ``--child PHASES_JSON aelab-args...``: time phases of one aelab command.

def _child(out_json: str, argv: list[str]) -> None:
    start = time.perf_counter()
    clocks: dict[str, float] = {}
    counts: dict[str, int] = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                clocks[name] = clocks.get(name, 0.0) + time.perf_counter() - t
                counts[name] = counts.get(name, 0) + 1
        wrapper.__wrapped__ = fn
        return wrapper

    import aelab.cli  # noqa: F401  (the CLI's own imports)
    if argv[0] == "report":  # imports only what `aelab report` imports
        import aelab.reporting as R
        clocks["imports"] = time.perf_counter() - start
        R.write_html_report = timed("report.html", R.write_html_report)
    else:
        _wrap_training(timed)
        clocks["imports"] = time.perf_counter() - start
    import aelab.__main__ as entry

    def record() -> None:
        clocks["main"] = time.perf_counter() - start
        Path(out_json).write_text(json.dumps({"clocks": clocks, "counts": counts}))

    if hasattr(entry, "_leave"):  # the CLI may end the process without teardown: record before it does
        leave = entry._leave
        entry._leave = lambda code: (record(), leave(code))
    sys.argv = ["aelab", *argv]
    try:
        entry.main()
    finally:
        record()


def _wrap_training(timed) -> None:
    """Import what `aelab train` imports and put clocks on its phases."""
    import aelab.api  # noqa: F401
    import aelab.pipeline as P
    import aelab.training.callbacks as C
    import aelab.training.gradient as G
    for name, attr in [("data", "load_dataset"), ("build", "build"), ("fit", "fit"), ("weights", "save_model"),
                       ("evaluation", "evaluate_model"), ("figures", "_figures"), ("report.md", "render_report")]:
        setattr(P, attr, timed(name, getattr(P, attr)))
    G.make_optimizer = timed("optimizer", G.make_optimizer)
    for attr in ("save_checkpoint", "save_tensors_and_state"):  # how many checkpoints are written
        if hasattr(C, attr):
            setattr(C, attr, timed("checkpoint writes", getattr(C, attr)))
    for cls in vars(C).values():  # every checkpoint / history callback class, whatever its name
        if isinstance(cls, type) and cls.__module__ == C.__name__:
            phase = "checkpoints" if "Checkpoint" in cls.__name__ else "history.csv" if "History" in cls.__name__ \
                else None
            for method in ("on_epoch_end", "on_train_end"):
                if phase and method in vars(cls):
                    setattr(cls, method, timed(phase, vars(cls)[method]))


# ----------------------------------------------------------------- parent side

def cpu_snapshot() -> tuple | None:
    """(busy CPU seconds of the whole machine, stolen by the hypervisor, wall)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / hz
    return busy, fields[7] / hz if len(fields) > 7 else 0.0, time.perf_counter()


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_command(args: list[str], env: dict, phases: Path) -> tuple[float, float, dict]:
    """(wall, child CPU, phase clocks) of one aelab command run as a child."""
    phases.unlink(missing_ok=True)  # never read a previous run's clocks
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(phases), *args],
                          env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if proc.returncode:
        sys.exit(f"aelab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, cpu, json.loads(phases.read_text())


def epoch_seconds(run_dir: Path) -> list[float]:
    with (run_dir / "history.csv").open(newline="") as f:
        return [float(r["seconds"]) for r in csv.DictReader(f)]


def one_run(config: Path, sets: list[str], src: str | None, tmp: Path) -> dict:
    env = dict(os.environ)
    if src:
        tree, *assignments = src.split()
        env["PYTHONPATH"] = str((ROOT / tree).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
        env.update(a.split("=", 1) for a in assignments)
    out = tmp / "run"
    shutil.rmtree(out, ignore_errors=True)
    load, snap = os.getloadavg()[0], cpu_snapshot()
    train_args = ["train", str(config), "--out", str(out), *[a for s in sets for a in ("--set", s)]]
    w_train, c_train, p_train = run_command(train_args, env, tmp / "train.json")
    w_report, c_report, p_report = run_command(["report", str(out)], env, tmp / "report.json")
    end = cpu_snapshot()
    epochs = epoch_seconds(out)
    wall, cpu = w_train + w_report, c_train + c_report
    other = None
    if snap and end:
        other = max(0.0, ((end[0] - snap[0]) - (end[1] - snap[1]) - cpu) / (end[2] - snap[2]))
    return {"src": src or "installed", "load1": load, "other_cpus": other, "wall": wall, "cpu": cpu,
            "train_wall": w_train, "report_wall": w_report, "epochs": len(epochs), "epoch_sum": sum(epochs),
            "first_epoch": epochs[0], "slowest_epoch": max(epochs), "ratio": wall / sum(epochs),
            "outside": wall - sum(epochs),
            "phases": breakdown(w_train, p_train, w_report, p_report, sum(epochs)),
            "counts": p_train["counts"]}


def breakdown(w_train: float, p_train: dict, w_report: float, p_report: dict, epoch_sum: float) -> dict:
    """Seconds per phase; the phases add up to the whole wall time."""
    t, r = p_train["clocks"], p_report["clocks"]
    get = lambda d, k: d.get(k, 0.0)  # noqa: E731
    loop = get(t, "fit") - get(t, "optimizer") - get(t, "checkpoints") - get(t, "history.csv") - epoch_sum
    out = {"imports": get(t, "imports") + get(r, "imports"), "data": get(t, "data"), "build": get(t, "build"),
           "optimizer": get(t, "optimizer"), "epochs": epoch_sum, "checkpoints": get(t, "checkpoints"),
           "history.csv": get(t, "history.csv"), "loop other": loop, "weights": get(t, "weights"),
           "evaluation": get(t, "evaluation"), "figures": get(t, "figures"), "report.md": get(t, "report.md"),
           "report.html": get(r, "report.html")}
    out["python start/exit"] = (w_train - get(t, "main")) + (w_report - get(r, "main"))
    out["cli, config, rest"] = (w_train + w_report) - sum(out.values())
    return out


def print_header() -> None:
    print(f"\n{'variant':<8} {'load1':>5} {'other':>5} {'whole s':>8} {'train s':>8} {'report s':>8} "
          f"{'cpu s':>7} {'epochs s':>8} {'1st ep':>6} {'max ep':>6} {'ratio':>6}")


def print_run(r: dict) -> None:
    other = "?" if r["other_cpus"] is None else f"{r['other_cpus']:.2f}"
    print(f"{r['variant']:<8} {r['load1']:5.2f} {other:>5} {r['wall']:8.2f} {r['train_wall']:8.2f} "
          f"{r['report_wall']:8.2f} {r['cpu']:7.2f} {r['epoch_sum']:8.2f} {r['first_epoch']:6.2f} "
          f"{r['slowest_epoch']:6.2f} {r['ratio']:5.2f}x", flush=True)


def print_summary(runs: list[dict], sources: list[str]) -> None:
    print("\nmedian per phase (seconds):")
    labels = [f"v{i + 1}" for i in range(len(sources))]
    print(f"{'phase':<18}" + "".join(f" {v:>10}" for v in labels))
    by = {s: [r for r in runs if r["src"] == s] for s in sources}
    for phase in PHASES:
        print(f"{phase:<18}" + "".join(f" {statistics.median(r['phases'][phase] for r in by[s]):10.2f}"
                                       for s in sources))
    for key, label in [("wall", "whole"), ("epoch_sum", "sum of epochs"), ("outside", "outside epochs"),
                       ("cpu", "child CPU")]:
        print(f"{label:<18}" + "".join(f" {statistics.median(r[key] for r in by[s]):10.2f}" for s in sources))
    print(f"{'whole / epochs':<18}" + "".join(
        f" {statistics.median(r['ratio'] for r in by[s]):9.2f}x" for s in sources))
    print(f"target: whole / sum of epochs <= {TARGET}x on a quiet machine")
    for v, s in zip(labels, sources):
        counts = by[s][-1]["counts"]
        print(f"{v}: {s}: {counts.get('checkpoint writes', 0)} checkpoints written, "
              f"{counts.get('history.csv', 0)} history.csv writes")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return _child(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="passed on, e.g. train.epochs=10")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--src", action="append", default=[],
                    help="'DIR [NAME=VALUE ...]': an aelab source tree (PYTHONPATH) and environment; repeatable")
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    args = ap.parse_args()
    sources = args.src or [None]
    print(f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"config {args.config}, set {args.sets or '-'}")
    runs = []
    for i, src in enumerate(sources):
        print(f"v{i + 1}: {src or 'installed'}")
    print_header()
    with tempfile.TemporaryDirectory(prefix="aelab-whole-") as tmp:
        for i in range(args.repeats):
            order = sources if i % 2 == 0 else sources[::-1]
            for src in order:
                run = one_run(args.config, args.sets, src, Path(tmp))
                runs.append(run | {"variant": f"v{sources.index(src) + 1}"})
                print_run(runs[-1])
    print_summary(runs, [s or "installed" for s in sources])
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
