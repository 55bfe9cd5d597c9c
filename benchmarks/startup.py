"""CPU seconds of the commands that should answer at once: ``aelab --help``,
``aelab datasets``, ``aelab show RUN``, ``aelab configs`` and a config
mistake.  Target: under 1 s of CPU each on a 2-core machine.

Measured as the child process's user + system CPU time
(``resource.getrusage(RUSAGE_CHILDREN)``), which other jobs on the machine
barely change, unlike wall time.  ``--baseline SRC`` runs the same commands
from another source tree side by side (e.g. a ``git worktree`` of an older
commit) and prints the ratio.

    python benchmarks/startup.py [--repeats 5] [--baseline /tmp/aelab-old/src]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "import sys; sys.argv[0] = 'aelab'; from aelab.__main__ import main; main()"


def cpu_seconds(args: list[str], src: Path) -> float:
    """User + system CPU seconds of one ``aelab ARGS`` run from ``src``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = os.environ | {"PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", ENTRY, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def a_run(tmp: Path) -> Path:
    """A small finished run for ``aelab show``."""
    out = tmp / "run"
    subprocess.run([sys.executable, "-m", "aelab", "train", "configs/digits-ae.yaml", "--set", "train.epochs=1",
                    "--out", str(out), "--quiet"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--baseline", type=Path, help="another source tree (its src/ folder) to compare with")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = a_run(Path(tmp))
        commands = {"--help": ["--help"], "datasets": ["datasets"], "show RUN": ["show", str(run)],
                    "configs": ["configs"],
                    "config mistake": ["train", "configs/digits-ae.yaml", "--set", "train.epochz=3"]}
        trees = {"now": ROOT / "src"} | ({"baseline": args.baseline} if args.baseline else {})
        print(f"load before: {os.getloadavg()[0]:.2f} (1 min); median of {args.repeats} runs, CPU seconds")
        print("| command | " + " | ".join(trees) + (" | baseline / now |" if args.baseline else " |"))
        print("|---|" + "---:|" * (len(trees) + bool(args.baseline)))
        for name, argv in commands.items():
            if name == "configs" and args.baseline:
                continue  # the baseline has no `aelab configs`
            cells = {t: statistics.median(cpu_seconds(argv, src) for _ in range(args.repeats))
                     for t, src in trees.items()}
            ratio = f" | {cells['baseline'] / cells['now']:.1f}x" if args.baseline else ""
            print(f"| `aelab {name}` | " + " | ".join(f"{v:.2f}" for v in cells.values()) + ratio + " |",
                  flush=True)
        print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
