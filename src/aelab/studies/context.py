"""What every study worker, strategy and output shares: the study's
context, and the bookkeeping of its trials (which count, which were
retried, which worker died).  It imports nothing else of the study
package's but the proposer interface, so strategies can read a study's
history without importing the runner that calls them.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..outdir import file_lock
from .proposer import Proposer
from .space import Param
from .storage import retry_params

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
    proposer: Proposer = field(default_factory=Proposer)  # how a trial becomes a config; its own outputs
    spec: Any = None  # the StudySpec it was prepared from (study.yaml is written from it)
    fuse: bool = True  # train runs that stack as fused groups (the study's fuse:, --no-fuse)
    workers: int = 1  # worker loops sharing the queue (a fused batch takes one's share)

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
