"""``run_study``: a study file in, a study directory out.

```
STUDY_DIR/
  study.yaml        the study file as run (base config resolved inline)
  optuna.journal    the default storage (any Optuna storage via --storage)
  runs/<hash>/      one ordinary run directory per (configuration, seed)
  results.csv       one row per trial
  summary.md        mean ± std per configuration
  figures/          bar charts, side-by-side reconstructions and latents, ...
```
Running the same command again continues the study; several processes (or
``--workers N``) share it through the storage.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
import yaml

from ..atomic import write_text
from ..data import load_dataset
from ..errors import AelabError
from ..spec import apply_overrides, load_config
from .results import TrialRow, summary_md, results_csv, trial_rows
from .runner import StudyContext, create_or_load, fingerprint, work
from .space import check_space, parse_space
from .spec import StudySpec, load_study_spec, _base_mapping
from .storage import check_storage_url
from .strategies import get_strategy


@dataclass
class StudyResult:
    path: Path
    name: str
    rows: list[TrialRow]
    best: list[int]
    figures: list[Path]


def prepare(source, out: str | Path | None = None, storage: str | None = None,
            trials: int | None = None) -> StudyContext:
    """Validate everything about a study before anything is written."""
    spec, _, folder = load_study_spec(source)
    label = "study" if isinstance(source, dict) else str(source)
    name = spec.name or (Path(source).stem if not isinstance(source, dict) else "study")
    base = apply_overrides(_base_mapping(spec, folder, label),
                           [*spec.set, f"eval.figures={str(spec.trial_figures).lower()}"])
    params = parse_space(spec.space)
    check_space(params, base, label)
    strategy = get_strategy(spec.strategy)
    budget = strategy.budget(params, trials or spec.trials)
    check_storage_url(storage)
    study_dir = Path(out) if out else Path("runs") / f"study-{name}"
    dump = {"space": spec.model_dump(mode="json")["space"], "objectives": spec.objectives,
            "strategy": spec.strategy, "repeats": spec.repeats, "seed": spec.seed, "base": base}
    return StudyContext(name=name, study_dir=study_dir, storage_url=storage, base=base, params=params,
                        objectives=dict(spec.objectives), repeats=spec.repeats, strategy=spec.strategy,
                        seed=spec.seed, budget=budget, fingerprint=fingerprint(dump),
                        extra={"spec": spec})


def _worker_main(ctx: StudyContext, index: int, threads: int) -> None:
    try:
        work(ctx, index, threads)
    except AelabError as e:
        raise SystemExit(f"worker {index}: {e}")


def warm_up(ctx: StudyContext) -> None:
    """Pay once, before forking, what every worker would pay on its first
    trial: torch.optim's lazy import of torch._dynamo (seconds) and loading
    the base config's data set (cached in-process)."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    try:
        load_dataset(load_config(ctx.base).data)
    except AelabError:
        pass  # a trial will report it


def _context():
    """fork where it is safe and cheap (Linux: workers inherit the warmed-up
    imports and data), spawn elsewhere (macOS, Windows)."""
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def run_workers(ctx: StudyContext, workers: int) -> None:
    """Run ``workers`` loops: in this process for one, else in worker
    processes with the cores shared out so they do not oversubscribe."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    if workers == 1:
        work(ctx, 0, threads)
        return
    warm_up(ctx)
    procs = [_context().Process(target=_worker_main, args=(ctx, i, threads), daemon=False)
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        print(f"warning: {len(bad)} worker(s) exited abnormally (codes {bad}); "
              f"their trials are retried by the next run")


def write_outputs(ctx: StudyContext, study: optuna.Study) -> StudyResult:
    """results.csv, summary.md and figures from the storage's current state."""
    rows = trial_rows(study, ctx)
    best = _best(study)
    write_text(ctx.study_dir / "results.csv", results_csv(rows, ctx))
    write_text(ctx.study_dir / "summary.md", summary_md(rows, ctx, best))
    from .figures import study_figures
    figures = study_figures(ctx.study_dir, rows, ctx, best)
    return StudyResult(ctx.study_dir, ctx.name, rows, best, figures)


def _best(study: optuna.Study) -> list[int]:
    try:
        return [t.number for t in study.best_trials]
    except ValueError:
        return []


def run_study(source, *, out=None, storage=None, workers: int = 1, trials: int | None = None) -> StudyResult:
    """Run (or continue) a study to its budget and write its outputs."""
    if workers < 1:
        raise AelabError(f"--workers: expected at least 1, got {workers}")
    ctx = prepare(source, out, storage, trials)
    ctx.study_dir.mkdir(parents=True, exist_ok=True)
    study = create_or_load(ctx)
    _write_study_file(ctx)
    run_workers(ctx, workers)
    return write_outputs(ctx, study)


def _write_study_file(ctx: StudyContext) -> None:
    spec: StudySpec = ctx.extra["spec"]
    data = spec.model_dump(mode="json", exclude_none=True)
    data.update(name=ctx.name, base=ctx.base, set=[])
    write_text(ctx.study_dir / "study.yaml", yaml.safe_dump(data, sort_keys=False))
