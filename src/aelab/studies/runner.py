"""Creating a study in its storage and working through its trials.

A worker is a loop: recover trials whose local worker process died (their
configuration is queued again and the dead trial is marked superseded), stop
when the queue is empty and the budget is spent, otherwise run one trial.
Any number of workers, in one process or many, cooperate through the
storage: queued configurations are popped atomically, so none is run twice.
"""
from __future__ import annotations

import contextlib
import json
import time

import optuna
from optuna.trial import TrialState

from ..errors import ConfigError
from ..threads import share
from .context import StudyContext, counted, recover_dead, superseded, worker_id  # noqa: F401 (their home)
from .storage import fail_stale, open_storage
from .strategies import get_strategy, optuna_params
from .batch import run_batch
from .objective import make_objective
from .trial import TrialFailed

optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported by aelab, in one line
CREATE_SECONDS = 30  # a study still without its fingerprint after this was abandoned by its creator


# ------------------------------------------------------------ the study


def create_or_load(ctx: StudyContext, worker_index: int = 0) -> optuna.Study:
    """Create the study (queueing the strategy's configurations exactly once)
    or load it, checking it was made from the same study file."""
    storage = open_storage(ctx.storage_url, ctx.study_dir)
    sampler = get_strategy(ctx.strategy).sampler(ctx.params, ctx.seed + worker_index)
    try:
        study = optuna.create_study(storage=storage, study_name=ctx.name, sampler=sampler,
                                    directions=ctx.directions)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=ctx.name, storage=storage, sampler=sampler)
        _wait_created(study, ctx)
        _check_fingerprint(study, ctx)
        return study
    _finish_creation(study, ctx)
    return study


def _finish_creation(study: optuna.Study, ctx: StudyContext) -> None:
    """Queue the strategy's configurations, then set the fingerprint: its
    presence tells other processes the queue is complete."""
    for values in get_strategy(ctx.strategy).queued(ctx.params):
        study.enqueue_trial(optuna_params(values), user_attrs={"queued": True}, skip_if_exists=True)
    study.set_user_attr("aelab_fingerprint", ctx.fingerprint)


def _wait_created(study: optuna.Study, ctx: StudyContext) -> None:
    """A process that loads a study another one is still creating (many
    processes started at once) waits until its queue is complete; if the
    creator died half-way, it finishes the creation itself."""
    deadline = time.monotonic() + CREATE_SECONDS
    while "aelab_fingerprint" not in study.user_attrs:
        if time.monotonic() > deadline:
            _finish_creation(study, ctx)
            return
        time.sleep(0.2)


def _check_fingerprint(study: optuna.Study, ctx: StudyContext) -> None:
    found = study.user_attrs.get("aelab_fingerprint")
    if found is not None and found != ctx.fingerprint:
        raise ConfigError(f"study '{ctx.name}' in this storage was created from a different study file "
                          f"(space, objectives, strategy or base changed); use another --out or name")


def finished(study: optuna.Study, ctx: StudyContext) -> bool:
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return False
    return ctx.strategy == "grid" or len(counted(trials)) >= ctx.budget


# ------------------------------------------------------------- the work


def work(ctx: StudyContext, worker_index: int = 0, threads: int | None = None,
         max_trials: int | None = None) -> None:
    """One worker's loop; returns when the study needs nothing more from it
    (or after ``max_trials`` trials: one per Ray task)."""
    with share(threads) if threads else contextlib.nullcontext():  # each run's ``auto``: this worker's cores
        _work(ctx, worker_index, max_trials)


def _work(ctx: StudyContext, worker_index: int, max_trials: int | None) -> None:
    study = create_or_load(ctx, worker_index)
    objective = make_objective(study, ctx)
    done = 0
    while max_trials is None or done < max_trials:
        recover_dead(study, ctx)
        fail_stale(study)  # another host's dead worker: its heartbeat stopped
        if finished(study, ctx):
            return
        if not (ctx.fuse and run_batch(study, ctx)):
            study.optimize(objective, n_trials=1, catch=(TrialFailed, ConfigError))
        done += 1


def fingerprint(spec_dump: dict) -> str:
    return json.dumps(spec_dump, sort_keys=True, default=str)
