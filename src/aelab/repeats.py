"""``aelab train CONFIG --repeats N``: N seeds of one config, trained as one.

Seeds ``train.seed, train.seed + 1, ...`` of the config are trained fused
(:mod:`aelab.training.fused`: the N models stacked into one batched
computation, each member exactly the run it would be alone) when the model
stacks, else one after another with a one-line warning saying why.  Each
seed is an ordinary run directory ``OUT/seed-<seed>/`` (config, history,
model, metrics, figures, report), and ``OUT/repeats.json`` and
``OUT/repeats.md`` hold every numeric metric's mean, standard deviation,
minimum and maximum over the seeds.

The seeds' run directories are written as :func:`aelab.fused_runs.train_jobs`
writes them (checkpoints included), but the command is one unit: an
interruption or a failure undoes the whole output (run the command again).
"""
from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

from . import interrupts, threads
from .atomic import write_text
from .data import load_dataset
from .errors import ConfigError, RunDirError
from .fused_runs import Job, train_jobs
from .outdir import check_dir, writing
from .pipeline import resolved
from .runs import Run, prepare_new, write_json
from .spec import Config, seeded

SUMMARY, TABLE = "repeats.json", "repeats.md"


def seed_dir(out: Path, cfg: Config) -> Path:
    return out / f"seed-{cfg.train.seed}"


def train_repeats(cfg: Config, repeats: int, out: Path) -> dict:
    """Train ``repeats`` seeds of ``cfg`` into ``out``; returns the summary."""
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: expected at least 1")
    data = load_dataset(cfg.data)
    cfg = resolved(cfg, data, resuming=False)
    cfgs = [seeded(cfg, k) for k in range(repeats)]
    check_dir(out)
    if (out / SUMMARY).exists():
        raise RunDirError(f"--out {out}: already holds repeated runs; choose another --out")
    for c in cfgs:
        prepare_new(seed_dir(out, c))
    started = time.perf_counter()
    with interrupts.hint(f"nothing of the fused group was kept in {out}; run the command again"), \
            writing(out, "--out", keep_on_interrupt=lambda: False), threads.using(cfg.train.threads):
        runs, how = _train(cfgs, out)
        summary = summarize(runs, how, time.perf_counter() - started)
        write_json(out / SUMMARY, summary)
        write_text(out / TABLE, markdown(summary))
    return summary | {"path": str(out)}


def _train(cfgs: list[Config], out: Path) -> tuple[list[Run], str]:
    """Fused when the models stack, else one run after another."""
    runs, fused = train_jobs([Job(c, seed_dir(out, c)) for c in cfgs])
    return runs, "fused" if fused == len(runs) else "one after another"


def summarize(runs: list[Run], how: str, seconds: float) -> dict:
    """Mean, standard deviation, min and max of every numeric metric all runs have."""
    keys = [k for k, v in runs[0].metrics.items() if _number(v) and all(_number(r.metrics.get(k)) for r in runs)]
    stats = {}
    for k in keys:
        values = [float(r.metrics[k]) for r in runs]
        stats[k] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "min": min(values), "max": max(values)}
    return {"repeats": len(runs), "trained": how, "seconds": seconds,
            "seeds": [r.config.train.seed for r in runs], "runs": [str(r.path) for r in runs],
            "statuses": [r.status for r in runs], "metrics": stats}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def markdown(summary: dict) -> str:
    """The summary as a table: metric, mean ± std, min, max."""
    head = (f"{summary['repeats']} seeds ({', '.join(map(str, summary['seeds']))}), trained {summary['trained']} "
            f"in {summary['seconds']:.1f} s\n\n| metric | mean ± std | min | max |\n|---|---|---|---|\n")
    rows = "".join(f"| {k} | {s['mean']:.4g} ± {s['std']:.2g} | {s['min']:.4g} | {s['max']:.4g} |\n"
                   for k, s in summary["metrics"].items())
    return head + rows
