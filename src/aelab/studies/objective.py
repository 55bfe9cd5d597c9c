"""A trial's life, in the phases every worker loop shares: :func:`begin`
(its worker named, pruned when over the budget, its config made),
training its seeds, :func:`score` (the objectives from the runs); and
:func:`failing` around them, which records why a trial failed or that it
was interrupted.  :func:`make_objective` strings them together for
``study.optimize``; :mod:`.batch` runs many trials' training as one.
"""
from __future__ import annotations

import contextlib
import time

import optuna

from ..errors import ConfigError
from .context import StudyContext, counted, worker_id
from .trial import TrialFailed, aggregate, numeric_metrics, objective_values, run_repeats


def over_budget(study: optuna.Study, trial: optuna.Trial, ctx: StudyContext) -> bool:
    """A freshly sampled trial beyond the budget (two workers raced past it)."""
    frozen = study._storage.get_trial(trial._trial_id)
    if frozen.user_attrs.get("queued") or "failed_trial" in frozen.system_attrs:
        return False
    earlier = [t for t in counted(study.get_trials(deepcopy=False)) if t.number < trial.number]
    return len(earlier) >= ctx.budget


def make_objective(study: optuna.Study, ctx: StudyContext):
    """One trial, start to end: its config, its seeds trained (or read back), its objectives."""
    def objective(trial: optuna.Trial) -> list[float]:
        start = time.perf_counter()
        cfg = begin(study, trial, ctx)
        with failing(trial, start):
            return score(trial, run_repeats(cfg, ctx.repeats, ctx.runs_dir, fuse=ctx.fuse), ctx, start)
    return objective


def begin(study: optuna.Study, trial: optuna.Trial, ctx: StudyContext):
    """Name the trial's worker, prune it when it is over the budget, and make its config."""
    trial.set_user_attr("worker", worker_id())
    if over_budget(study, trial, ctx):
        trial.set_user_attr("over_budget", True)
        raise optuna.TrialPruned()
    with failing(trial, time.perf_counter()):
        return choose_config(study, trial, ctx)


@contextlib.contextmanager
def failing(trial: optuna.Trial, start: float):
    """Record why the trial failed (one line) and its seconds, or that it was interrupted."""
    try:
        yield
    except (TrialFailed, ConfigError) as e:
        trial.set_user_attr("fail_reason", str(e))
        trial.set_user_attr("seconds", time.perf_counter() - start)
        raise
    except KeyboardInterrupt:  # not the configuration's fault: the next run retries it
        trial.set_user_attr("interrupted", True)
        raise


def score(trial: optuna.Trial, runs: list, ctx: StudyContext, start: float) -> list[float]:
    """The trial's objective values: each metric's mean over its seeds' runs."""
    per_seed = [numeric_metrics(r.metrics) for r in runs]
    mean, std = aggregate(per_seed)
    result = objective_values(mean, ctx.objectives)
    trial.set_user_attr("runs", [str(r.path.relative_to(ctx.study_dir)) for r in runs])
    trial.set_user_attr("per_seed", per_seed)
    trial.set_user_attr("seconds", time.perf_counter() - start)
    return result


def choose_config(study: optuna.Study, trial: optuna.Trial, ctx: StudyContext):
    """The trial's config, as the study's proposer makes it from the
    values its strategy suggested for the space's fields."""
    return ctx.proposer.config(study, trial, ctx, {p.key: p.suggest(trial) for p in ctx.params})
