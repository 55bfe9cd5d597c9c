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
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..errors import ConfigError
from .architecture.space import ArchitectureSpec, Space
from .space import Param, config_for, label_of
from .storage import fail_stale, open_storage, retry_params
from .strategies import get_strategy, optuna_params
from ..outdir import file_lock
from ..threads import share
from .trial import TrialFailed, aggregate, numeric_metrics, objective_values, run_repeats

optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported by aelab, in one line
CREATE_SECONDS = 30  # a study still without its fingerprint after this was abandoned by its creator
ORPHAN_SECONDS = 120  # a RUNNING trial that never named its worker is presumed dead after this


@dataclass
class StudyContext:
    """Everything a worker process needs (picklable)."""

    name: str
    study_dir: Path
    storage_url: str | None
    base: dict
    params: list[Param]
    objectives: dict[str, str]
    repeats: int
    strategy: str
    seed: int
    budget: int
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)
    architecture: "ArchitectureSpec | None" = None  # an architecture space to search or evolve
    input_shape: tuple[int, int, int] | None = None  # the data's (C, H, W), for architecture studies

    @property
    def runs_dir(self) -> Path:
        return self.study_dir / "runs"

    @property
    def directions(self) -> list[str]:
        return ["minimize" if d == "min" else "maximize" for d in self.objectives.values()]


def worker_id() -> str:
    """``host:pid:start`` -- enough to tell a dead local worker from a live one."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def _alive(worker: str) -> bool:
    host, pid, start = worker.rsplit(":", 2)
    if host != socket.gethostname():
        return True  # another machine's worker: its storage heartbeat covers it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start == "?" or _start_time(int(pid)) == start


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


# ----------------------------------------------------------- bookkeeping


def superseded(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of trials that were retried (their retry counts instead)."""
    out = set()
    for t in trials:
        if "retry_of" in t.user_attrs:
            out.add(t.user_attrs["retry_of"])
        if "failed_trial" in t.system_attrs:
            out.add(t.system_attrs["failed_trial"])
    return out


def counted(trials) -> list[optuna.trial.FrozenTrial]:
    """Trials that count against the budget (not retried, not over budget)."""
    gone = superseded(trials)
    return [t for t in trials if t.number not in gone and not t.user_attrs.get("over_budget")]


def recover_dead(study: optuna.Study, ctx: StudyContext) -> int:
    """Fail RUNNING trials whose local worker died and queue them again; queue
    again trials that an interruption (SIGINT, SIGTERM) failed."""
    recovered = 0
    with file_lock(ctx.study_dir / ".recover.lock"):
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker")
            if worker is None:  # killed between popping the trial and naming itself
                age = time.time() - (t.datetime_start.timestamp() if t.datetime_start else time.time())
                if age < ORPHAN_SECONDS:
                    continue
                worker = "unknown worker"
            elif _alive(worker):
                continue
            try:  # the heartbeat may have failed (and retried) it meanwhile: then it is not ours
                study._storage.set_trial_user_attr(t._trial_id, "fail_reason", f"worker {worker} died")
                study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            _retry(study, t)
            recovered += 1
        gone = superseded(study.get_trials(deepcopy=False))
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if t.user_attrs.get("interrupted") and t.number not in gone:  # SIGINT / SIGTERM mid-trial
                _retry(study, t)
                recovered += 1
    return recovered


def _retry(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
    """Queue trial ``t``'s configuration again; ``t`` is then superseded."""
    attrs = {k: v for k, v in t.user_attrs.items() if k in ("queued",)}
    study.enqueue_trial(retry_params(t), user_attrs={**attrs, "queued": True, "retry_of": t.number})


def finished(study: optuna.Study, ctx: StudyContext) -> bool:
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return False
    return ctx.strategy == "grid" or len(counted(trials)) >= ctx.budget


def over_budget(study: optuna.Study, trial: optuna.Trial, ctx: StudyContext) -> bool:
    """A freshly sampled trial beyond the budget (two workers raced past it)."""
    frozen = study._storage.get_trial(trial._trial_id)
    if frozen.user_attrs.get("queued") or "failed_trial" in frozen.system_attrs:
        return False
    earlier = [t for t in counted(study.get_trials(deepcopy=False)) if t.number < trial.number]
    return len(earlier) >= ctx.budget


# ------------------------------------------------------------- the work


def make_objective(study: optuna.Study, ctx: StudyContext):
    def objective(trial: optuna.Trial) -> list[float]:
        trial.set_user_attr("worker", worker_id())
        if over_budget(study, trial, ctx):
            trial.set_user_attr("over_budget", True)
            raise optuna.TrialPruned()
        start = time.perf_counter()
        try:
            cfg = choose_config(study, trial, ctx)
            runs = run_repeats(cfg, ctx.repeats, ctx.runs_dir)
            per_seed = [numeric_metrics(r.metrics) for r in runs]
            mean, std = aggregate(per_seed)
            result = objective_values(mean, ctx.objectives)
        except (TrialFailed, ConfigError) as e:
            trial.set_user_attr("fail_reason", str(e))
            trial.set_user_attr("seconds", time.perf_counter() - start)
            raise
        except KeyboardInterrupt:  # not the configuration's fault: the next run retries it
            trial.set_user_attr("interrupted", True)
            raise
        trial.set_user_attr("runs", [str(r.path.relative_to(ctx.study_dir)) for r in runs])
        trial.set_user_attr("per_seed", per_seed)
        trial.set_user_attr("seconds", time.perf_counter() - start)
        return result
    return objective


def choose_config(study: optuna.Study, trial: optuna.Trial, ctx: StudyContext):
    """The trial's config: a point of the space (sampled or queued), or the
    architecture the strategy proposes (with the space's fields on top)."""
    values = {p.key: p.suggest(trial) for p in ctx.params}
    if ctx.architecture is None:
        trial.set_user_attr("config", label_of(values))
        return config_for(ctx.base, ctx.params, values)
    from .architecture.propose import propose  # it reads the history through this module
    space = Space.resolve(ctx.architecture, config_for(ctx.base, ctx.params, values).model_dump(mode="json"),
                          ctx.input_shape)
    arch = propose(study, trial, ctx, space).arch
    trial.set_user_attr("config", ", ".join(filter(None, [arch.label(), label_of(values)])))
    return space.config(arch)


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
        study.optimize(objective, n_trials=1, catch=(TrialFailed, ConfigError))
        done += 1


def fingerprint(spec_dump: dict) -> str:
    return json.dumps(spec_dump, sort_keys=True, default=str)
