"""One configuration of a study, trained ``repeats`` times.

Runs are cached by the hash of their fully resolved config (seed included)
under ``STUDY_DIR/runs/<hash>/``: a configuration that finished is read back,
never retrained; one whose worker was killed resumes from its checkpoint;
two workers that reach the same configuration take turns (a file lock).
The seeds still to train are trained together, fused where their models
stack (:func:`aelab.cache.cached_runs`), unless the study says ``fuse: false``.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

from ..cache import cached_runs
from ..runs import Run
from ..spec import Config, seeded


class TrialFailed(Exception):
    """A configuration could not be scored; the message is the one-line reason."""


def run_repeats(cfg: Config, repeats: int, runs_dir: Path, fuse: bool = True) -> list[Run]:
    """Train (or reuse) every seed of one configuration."""
    cfgs = seeds(cfg, repeats)
    try:
        runs = cached_runs(cfgs, runs_dir, fuse=fuse)
    except Exception as e:  # a trial failing must not stop the study
        raise TrialFailed(f"{_seeds(cfgs)}: {type(e).__name__}: {_one_line(e)}") from e
    return completed(runs)


def seeds(cfg: Config, repeats: int) -> list[Config]:
    """The configuration's ``repeats`` seeds: ``train.seed`` onwards."""
    return [seeded(cfg, r) for r in range(repeats)]


def completed(runs: list[Run]) -> list[Run]:
    """``runs``, if every one of them completed; else the first one that did not, in one line."""
    for run in runs:
        if run.status != "completed":
            epoch = run.metrics.get(f"{run.status}_epoch", "?")
            raise TrialFailed(f"seed {run.config.train.seed}: {run.status} at epoch {epoch}")
    return runs


def _seeds(cfgs: list[Config]) -> str:
    seeds = [c.train.seed for c in cfgs]
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text[:300] or type(e).__name__


def numeric_metrics(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None}


def aggregate(per_seed: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (sample) standard deviation of each metric over seeds."""
    keys = [k for k in per_seed[0] if all(k in m for m in per_seed)]
    mean = {k: statistics.fmean(m[k] for m in per_seed) for k in keys}
    std = {k: statistics.stdev([m[k] for m in per_seed]) if len(per_seed) > 1 else 0.0 for k in keys}
    return mean, std


def objective_values(mean: dict[str, float], objectives: dict[str, str]) -> list[float]:
    values = []
    for name in objectives:
        v = mean.get(name, math.nan)
        if not math.isfinite(v):
            raise TrialFailed(f"objective {name} is {'missing or undefined (nan)' if name not in mean else v}")
        values.append(v)
    return values
