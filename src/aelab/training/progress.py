"""The training progress bar (stderr), for gradient and GA/ES runs alike::

    runs/x ━━━━━╺━━━━━ epoch 12/40  loss 0.0213  val 0.022  0:00:12 elapsed, 0:00:28 left
    runs/ga ━━━╺━━━━━━ generation 300/1000  mae 0.104  val 0.106  0:00:40 elapsed, 0:01:33 left

A GA/ES run counts generations (``state.epoch`` is the generation reached;
a history row, hence an update of the bar, comes every ``log_every``
generations) and names its fitness.  The text after the bar is a pure
function (:func:`bar_status`).  The run's name is never cut: the bar gives
way, and where the line cannot hold name and text the name is printed once
above the bar.  :func:`closing_progress` stops the bar however training ends
(an error, Ctrl-C), so the terminal gets its cursor back.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
from rich.table import Column
from rich.text import Text

from ..progress import clock
from .gradient import Callback

BAR_MIN, BAR_MAX = 10, 40


def losses_text(row: dict, name: str = "loss") -> str:
    """``loss 0.0213  val 0.022`` from a history row (no ``val`` without a validation split)."""
    text = f"{name} {row['train_loss']:.4g}"
    val = row.get("val_loss", math.nan)
    if val is not None and not math.isnan(val):
        text += f"  val {val:.4g}"
    return text


def bar_status(unit: str, done: int, total: int, losses: str, elapsed: float | None,
               left: float | None, end: str = "") -> str:
    """``epoch 12/40  loss 0.0213  val 0.022  0:00:12 elapsed, 0:00:28 left``;
    ``end`` (e.g. ``stopped early``) replaces the time left once training is over."""
    parts = [f"{unit} {done}/{total}", losses]
    times = f"{clock(elapsed or 0)} elapsed"
    if end:
        times += f", {end}"
    elif left is not None and done < total:
        times += f", {clock(left)} left"
    parts.append(times)
    return "  ".join(p for p in parts if p)


class _Status(ProgressColumn):
    """Everything after the bar, from the task's fields and Rich's time estimate."""

    def render(self, task) -> Text:
        f = task.fields
        left = task.time_remaining
        if left is not None and f.get("limit") is not None:  # max_seconds ends a GA/ES run sooner
            left = min(left, max(0.0, f["limit"] - (task.elapsed or 0.0)))
        return Text(bar_status(f["unit"], int(task.completed), int(task.total or 0), f["losses"], task.elapsed,
                               left, f.get("end", "")))


class ProgressCallback(Callback):
    """A Rich progress bar on stderr: run name, bar, epoch (or generation),
    losses, time elapsed and left."""

    def __init__(self, description: str = "train", console: Console | None = None):
        self.description, self.console = description, console
        self.progress: Progress | None = None

    def on_train_start(self, trainer) -> None:
        spec = trainer.spec
        total, unit, limit = spec.budget, spec.unit, spec.time_budget
        self.loss_name = spec.loss_name
        if limit is not None:
            limit -= getattr(trainer, "elapsed", 0.0)  # a resumed run keeps its time budget
        console = self.console or Console(stderr=True)
        text = self._text_width(unit, total)
        name = self.description
        if len(name) + BAR_MIN + text + 2 > console.width:  # no room on one line: the name stays whole above the bar
            console.print(name, style="bold", markup=False, highlight=False, soft_wrap=True)
            name = ""
        bar = max(BAR_MIN, min(BAR_MAX, console.width - len(name) - text - 2))
        columns = [TextColumn("{task.description}", style="bold", markup=False, table_column=Column(no_wrap=True))]
        self.progress = Progress(
            *(columns if name else []), BarColumn(bar_width=bar),
            _Status(table_column=Column(no_wrap=True, overflow="ellipsis")),  # a very narrow terminal cuts its end
            console=console, transient=False, redirect_stdout=False)
        history = trainer.state.history  # a resumed run shows where it stands from the start
        self.task = self.progress.add_task(name, total=total, completed=trainer.state.epoch, unit=unit,
                                           losses=losses_text(history[-1], self.loss_name) if history else "",
                                           limit=limit, end="")
        self.progress.start()

    def _text_width(self, unit: str, total: int) -> int:
        """The width of the text after the bar with typical numbers (a 4-digit loss, hours left)."""
        return len(bar_status(unit, total, total, f"{self.loss_name} 0.0000  val 0.0000", 3600, None,
                              end="1:00:00 left"))

    def on_epoch_end(self, trainer) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=trainer.state.epoch,
                                 losses=losses_text(trainer.state.history[-1], self.loss_name))

    def on_train_end(self, trainer) -> None:
        if self.progress is not None:
            s = trainer.state
            end = "stopped early" if s.stopped_early else ("diverged" if s.status == "diverged" else "")
            self.progress.update(self.task, completed=s.epoch, end=end)
        self.close()

    def close(self) -> None:
        """Stop the bar (drawn a last time, cursor shown again); idempotent."""
        progress, self.progress = self.progress, None
        if progress is not None:
            progress.stop()


@contextlib.contextmanager
def closing_progress(callbacks) -> Iterator[None]:
    """Around a ``fit``: stop any progress bar among ``callbacks`` however it ends."""
    try:
        yield
    finally:
        for cb in callbacks:
            if isinstance(cb, ProgressCallback):
                cb.close()
