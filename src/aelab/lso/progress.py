"""What a running LSO experiment file shows on stderr: one line per training
reused or trained and per method finished, and on a terminal a live line
with the step under way::

    [1/4] classifier tiny-clf: trained in 2.1 s  out/runs/tiny-clf-3f2a9c0d1e4b5a6c
    [2/4] judge tiny-judge: reused  out/runs/tiny-judge-9a8b7c6d5e4f3a2b
    [4/4] method paper step: success 67%, judge accuracy 83%, FID 45.1  1.2 s
    lso tiny ━━━━━━━━━━━━━━━╺━━━━ 3/4 steps  method pixels (0:00:01)  0:00:09 elapsed
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from ..progress import Reporter, clock, duration, live_row


def training_line(role: str, name: str, how: str, seconds: float, path: Path | str) -> str:
    """``classifier tiny-clf: trained in 2.1 s  out/runs/...`` (``how``: trained, resumed, reused)."""
    verb = how if how == "reused" else f"{how} in {duration(seconds)}"
    return f"{role} {name}: {verb}  {path}"


def method_line(row: dict) -> str:
    """``method NAME: success 67%, judge accuracy 83%, FID 45.1  1.2 s`` from a row of the study table."""
    def pct(v):
        return "—" if v is None or not math.isfinite(v) else f"{v:.0%}"
    fid = row.get("fid")
    scores = [f"success {pct(row.get('success_rate'))}", f"judge accuracy {pct(row.get('judge_accuracy'))}"]
    if fid is not None and math.isfinite(fid):
        scores.append(f"FID {fid:.1f}")
    return f"method {row['method']}: {', '.join(scores)}  {duration(row.get('seconds'))}"


def lso_live_text(done: int, total: int, doing: str, step_seconds: float, elapsed: float) -> str:
    """``3/4 steps  training decoder tiny-ae (0:00:05)  0:00:09 elapsed`` (between steps: no step)."""
    step = f"  {doing} ({clock(step_seconds)})" if doing else ""
    return f"{done}/{total} steps{step}  {clock(elapsed)} elapsed"


class LSOProgress:
    """Counts an LSO study's steps (trainings, then methods) and reports them;
    silent without a reporter.  A context manager around the work."""

    def __init__(self, name: str, total: int, reporter: Reporter | None = None):
        self.name, self.total, self.reporter = name, total, reporter
        self.done, self.doing = 0, "starting"
        self.start = self.step_start = time.monotonic()

    def begin(self, doing: str) -> None:
        """Say what the live line shows until the next step finishes."""
        self.doing, self.step_start = doing, time.monotonic()

    def finish(self, line: str) -> None:
        """A step is done: its line stays."""
        self.done, self.doing = self.done + 1, ""
        if self.reporter is not None:
            self.reporter.line(f"[{self.done}/{self.total}] {line}")

    def render(self):
        now = time.monotonic()
        text = lso_live_text(self.done, self.total, self.doing, now - self.step_start, now - self.start)
        return live_row(f"lso {self.name}", self.done, self.total, text)

    def __enter__(self) -> "LSOProgress":
        if self.reporter is not None:
            self.reporter.start(self.render)
        return self

    def __exit__(self, *exc) -> None:
        if self.reporter is not None:
            self.reporter.stop()
