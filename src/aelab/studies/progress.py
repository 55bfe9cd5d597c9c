"""What a running study shows: one line per finished trial, and a live line.

Both are read from the study's storage, never from the workers, so they are
the same for every executor (one worker in this process, forked workers,
Ray tasks): a thread of the process that started the study polls the
storage every ``POLL_SECONDS`` (:class:`StudyWatcher`).  The lines and the
live text are pure functions of the trials (:func:`trial_line`,
:func:`tally`, :func:`live_text`)::

    [1/4] trial 0  latent_dim=2, lr=0.01  complete  recon_mse 0.07842  2.1 s
    [2/4] trial 1  latent_dim=2, lr=1e+09  failed: seed 0: diverged at epoch 1  0.4 s
    study t ━━━━━╺━━━━ 2/4 trials  2 running  1 failed  0:00:03 elapsed, 0:00:03 left  best recon_mse 0.07842

A trial that is retried (its worker died, or it was interrupted and the
next run picks it up) is said to be retried, not failed; one started past
the budget (two workers raced for the last slot) is not shown at all.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from ..progress import Reporter, clock, duration, live_row
from .context import StudyContext, counted, superseded

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Tally:
    """Where a study stands: trials settled (:func:`settled`) of the budget, running, failed, the best."""

    done: int
    budget: int
    running: int
    failed: int
    best: float | None  # first objective, best of the complete trials


def settled(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Counted trials that are over for good: complete, or failed with the
    reason they recorded themselves.  A trial that was interrupted or whose
    worker died waits for its retry, and is not done yet."""
    return [t for t in counted(trials) if t.state == TrialState.COMPLETE or failed_for_good(t)]


def failed_for_good(t: FrozenTrial) -> bool:
    return t.state == TrialState.FAIL and "fail_reason" in t.user_attrs and "seconds" in t.user_attrs


def tally(trials: list[FrozenTrial], budget: int, direction: str = "min") -> Tally:
    """The :class:`Tally` of ``trials`` (``direction``: the first objective's, ``min`` or ``max``)."""
    done = settled(trials)
    scores = [t.values[0] for t in done if t.state == TrialState.COMPLETE and t.values]
    best = (min if direction == "min" else max)(scores) if scores else None
    return Tally(done=len(done), budget=budget, running=sum(t.state == TrialState.RUNNING for t in trials),
                 failed=sum(t.state == TrialState.FAIL for t in done), best=best)


def remaining(done: int, done_at_start: int, budget: int, elapsed: float) -> float | None:
    """Seconds left at this session's pace (parallel workers included); None before its first trial."""
    finished_here = done - done_at_start
    if finished_here <= 0:
        return None
    return elapsed / finished_here * max(0, budget - done)


def live_text(t: Tally, objective: str | None, elapsed: float, left: float | None) -> str:
    """``7/24 trials  2 running  1 failed  0:01:12 elapsed, 0:02:40 left  best recon_mse 0.0213``
    (no failures: no ``failed``; the best last, as a narrow terminal cuts the end)."""
    parts = [f"{t.done}/{t.budget} trials", f"{t.running} running"] + ([f"{t.failed} failed"] if t.failed else [])
    times = f"{clock(elapsed)} elapsed"
    if left is not None and t.done < t.budget:
        times += f", {clock(left)} left"
    parts.append(times)
    if t.best is not None and objective:
        parts.append(f"best {objective} {t.best:.4g}")
    return "  ".join(parts)


def outcome(t: FrozenTrial, gone: set[int], final: bool = False) -> str | None:
    """How a finished trial is reported -- ``complete``, ``failed``, ``retried``,
    ``interrupted``, ``over budget`` -- or None while that is not known yet.

    A failure the trial itself recorded (``fail_reason`` with ``seconds``) is
    final.  Any other failure (an interruption, a dead worker) is waiting to
    be retried: it is reported once the retry is queued, or at the end."""
    if t.user_attrs.get("over_budget"):
        return "over budget" if t.state == TrialState.PRUNED else None
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "pruned"
    if t.state != TrialState.FAIL:
        return None
    if t.number in gone:
        return "retried"
    if failed_for_good(t):
        return "failed"
    if not final:
        return None
    return "interrupted" if t.user_attrs.get("interrupted") else "failed"


def trial_line(t: FrozenTrial, state: str, objectives: list[str], position: str = "") -> str:
    """One finished trial: position, number, configuration, state, values, seconds."""
    head = f"trial {t.number}" + (f" (retry of {t.user_attrs['retry_of']})" if "retry_of" in t.user_attrs else "")
    parts = [f"{position} {head}" if position else head, t.user_attrs.get("config") or _params(t)]
    if state == "complete":
        parts += ["complete", ", ".join(f"{n} {v:.4g}" for n, v in zip(objectives, t.values or []))]
    elif state == "failed":
        parts.append(f"failed: {t.user_attrs.get('fail_reason') or 'no reason recorded'}")
    elif state == "retried":
        reason = t.user_attrs.get("fail_reason") or ("interrupted" if t.user_attrs.get("interrupted") else "")
        parts.append(f"retried ({reason})" if reason else "retried")
    elif state == "interrupted":
        parts.append("interrupted (the next run retries it)")
    else:
        parts.append(state)
    parts.append(duration(_seconds(t)))
    return "  ".join(p for p in parts if p)


def _params(t: FrozenTrial) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in t.params.items()) or "(no configuration yet)"


def _seconds(t: FrozenTrial) -> float | None:
    if "seconds" in t.user_attrs:
        return t.user_attrs["seconds"]
    if t.datetime_start and t.datetime_complete:
        return (t.datetime_complete - t.datetime_start).total_seconds()
    return None


def positions(trials: list[FrozenTrial]) -> dict[int, int]:
    """Trial number -> its place among the settled trials, by finishing time."""
    done = sorted(settled(trials),
                  key=lambda t: (t.datetime_complete.timestamp() if t.datetime_complete else math.inf, t.number))
    return {t.number: i + 1 for i, t in enumerate(done)}


class StudyWatcher:
    """Polls a study's storage from a thread: prints each trial as it
    finishes and keeps the live line current.  Use as a context manager
    around the executor; on leaving (normally, on an error or on Ctrl-C)
    it polls a last time, so every trial of the session is reported."""

    def __init__(self, study, ctx: StudyContext, reporter: Reporter, poll_seconds: float = POLL_SECONDS):
        self.study, self.ctx, self.reporter, self.poll_seconds = study, ctx, reporter, poll_seconds
        self.objectives = list(ctx.objectives)
        self.direction = next(iter(ctx.objectives.values()), "min")
        trials = self._trials()
        self.seen = {t.number for t in trials if t.state not in (TrialState.RUNNING, TrialState.WAITING)}
        self.state = tally(trials, ctx.budget, self.direction)
        self.done_at_start = self.state.done
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def poll(self, final: bool = False) -> list[str]:
        """Read the storage; print (and return) the lines of newly finished trials."""
        trials = self._trials()
        gone, place = superseded(trials), positions(trials)
        lines = []
        for t in sorted(trials, key=lambda t: place.get(t.number, math.inf)):
            if t.number in self.seen:
                continue
            state = outcome(t, gone, final)
            if state is None:
                continue
            self.seen.add(t.number)
            if state == "over budget":
                continue
            pos = f"[{place[t.number]}/{self.ctx.budget}]" if t.number in place else ""
            lines.append(trial_line(t, state, self.objectives, pos))
        self.state = tally(trials, self.ctx.budget, self.direction)
        for line in lines:
            self.reporter.line(line)
        return lines

    def text(self) -> str:
        elapsed = time.monotonic() - self.start
        left = remaining(self.state.done, self.done_at_start, self.state.budget, elapsed)
        return live_text(self.state, self.objectives[0] if self.objectives else None, elapsed, left)

    def render(self):
        return live_row(f"study {self.ctx.name}", self.state.done, self.state.budget, self.text())

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # a storage hiccup must not stop the study; the next poll tries again
                pass

    def __enter__(self) -> "StudyWatcher":
        if self.done_at_start:
            self.reporter.line(f"study {self.ctx.name}: {self.done_at_start}/{self.ctx.budget} trials "
                               f"already finished, continuing")
        self.reporter.start(self.render)
        self._thread = threading.Thread(target=self._loop, name="aelab-study-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        try:
            if self._thread is not None:
                self._thread.join()
            self.poll(final=True)
        finally:
            self.reporter.stop()
