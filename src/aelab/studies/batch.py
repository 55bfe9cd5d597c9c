"""Trials trained together: a study's fused step.

A grid (or any queued) study knows its trials before it runs them, and a
random search's draws never read results, so a worker can take several
trials at once (the queued ones, or that many fresh draws -- the very
trials it would have drawn one by one), train all their seeds in one call
-- :func:`aelab.cache.cached_runs`, which fuses the runs whose models stack
(:mod:`aelab.fused_runs`) -- and then score each trial from its own runs,
exactly as if it had been run alone.  Each trial still has its own run
directories (cached by config hash, resumable), its own state in the
storage and its own failure: when the batch's training fails, every trial
is retried on its own, so only the faulty ones fail.

Trials proposed from earlier results (TPE, NSGA-II, architecture evolution
and architecture search) are run one at a time, their seeds still fused
with each other.
"""
from __future__ import annotations

import math
import time
import warnings
from contextlib import ExitStack

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState

from ..cache import cached_runs
from ..errors import ConfigError
from .context import StudyContext, counted
from .objective import begin, failing, score
from .strategies import get_strategy
from .trial import TrialFailed, run_repeats, seeds

MEMBERS = 64  # runs one batch trains at most (fused groups are further split to fit memory)


def waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def batch_size(study: optuna.Study, ctx: StudyContext) -> int:
    """Trials to take at once: up to :data:`MEMBERS` runs, and no more than
    this worker's share of the queue -- or, for a strategy whose draws are
    independent of results, of the trials left in the budget (the other
    workers get theirs)."""
    todo = waiting(study)
    if not todo and get_strategy(ctx.strategy).independent and not ctx.proposer.reads_history:
        todo = max(0, ctx.budget - len(counted(study.get_trials(deepcopy=False))))
    return min(max(1, MEMBERS // ctx.repeats), math.ceil(todo / max(1, ctx.workers)))


def run_batch(study: optuna.Study, ctx: StudyContext) -> bool:
    """Take several queued trials, train their seeds together and finish
    each; False (nothing taken) when fewer than two are queued.  An
    interruption marks every trial not finished yet interrupted (the next
    run retries them; their checkpoints are kept)."""
    size = batch_size(study, ctx)
    if size < 2:
        return False
    with warnings.catch_warnings():  # optuna: heartbeats are "supposed to be used with Study.optimize"; we beat below
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trials = [study.ask() for _ in range(size)]
    untold = list(trials)

    def tell(trial, *args, **kwargs):
        study.tell(trial, *args, **kwargs)
        untold.remove(trial)

    try:
        with ExitStack() as beats:
            for t in trials:
                beats.enter_context(get_heartbeat_thread(t._trial_id, study._storage))
            _run(study, ctx, trials, tell)
    except KeyboardInterrupt:
        for t in untold:
            t.set_user_attr("interrupted", True)
            study.tell(t, state=TrialState.FAIL)
        raise
    return True


def _run(study: optuna.Study, ctx: StudyContext, trials: list[optuna.Trial], tell) -> None:
    ready = []
    for t in trials:
        start = time.perf_counter()
        cfg = _or_told(tell, t, lambda t=t: begin(study, t, ctx))
        if cfg is not None:
            ready.append((t, cfg, start))
    try:
        cached_runs([c for _, cfg, _ in ready for c in seeds(cfg, ctx.repeats)], ctx.runs_dir, fuse=True)
    except Exception:  # noqa: BLE001 -- each trial below trains its own runs again, and fails alone
        pass
    for t, cfg, start in ready:
        values = _or_told(tell, t, lambda t=t, cfg=cfg, start=start: _finish(t, cfg, ctx, start))
        if values is not None:
            tell(t, values)


def _finish(trial: optuna.Trial, cfg, ctx: StudyContext, start: float) -> list[float]:
    """The trial's runs (read back when the batch trained them) and its objectives."""
    with failing(trial, start):
        return score(trial, run_repeats(cfg, ctx.repeats, ctx.runs_dir, fuse=ctx.fuse), ctx, start)


def _or_told(tell, trial: optuna.Trial, fn):
    """``fn()``; a pruned or failed trial is told so (as ``study.optimize``
    tells it) and gives None."""
    try:
        return fn()
    except optuna.TrialPruned:
        tell(trial, state=TrialState.PRUNED)
    except (TrialFailed, ConfigError):
        tell(trial, state=TrialState.FAIL)
    return None
