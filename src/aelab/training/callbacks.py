"""Callbacks for :class:`GradientTrainer`: checkpoint, history file, progress bar."""
from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..atomic import write_text
from .checkpoint import save_checkpoint, save_tensors_and_state
from .gradient import Callback, GradientTrainer

HISTORY_FIRST = ["epoch", "train_loss", "val_loss", "seconds"]


def history_csv(history: list[dict]) -> str:
    """History rows as CSV text; the four standard columns come first."""
    keys = list(HISTORY_FIRST)
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _cell(row.get(k)) for k in keys})
    return buf.getvalue()


def _cell(v):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else v


class CheckpointCallback(Callback):
    """Save a resumable checkpoint every ``every`` epochs and at the end."""

    def __init__(self, path: str | Path, every: int = 1):
        self.path, self.every = Path(path), every

    def on_epoch_end(self, trainer: GradientTrainer) -> None:
        if trainer.state.epoch % self.every == 0 or trainer.state.status != "running":
            save_checkpoint(self.path, trainer)

    def on_train_end(self, trainer: GradientTrainer) -> None:
        save_checkpoint(self.path, trainer)


class EvolutionCheckpointCallback(Callback):
    """Checkpoint a GA/ES run at most every ``every_seconds`` and at the end
    (a population can be tens of MB: per-record writes would dominate)."""

    def __init__(self, path: str | Path, every_seconds: float = 10.0):
        self.path, self.every, self.last = Path(path), every_seconds, time.perf_counter()

    def on_epoch_end(self, trainer) -> None:
        if time.perf_counter() - self.last >= self.every:
            save_tensors_and_state(self.path, *trainer.checkpoint())
            self.last = time.perf_counter()

    def on_train_end(self, trainer) -> None:
        save_tensors_and_state(self.path, *trainer.checkpoint())


class HistoryCallback(Callback):
    """Rewrite ``history.csv`` (atomically) after every epoch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_epoch_end(self, trainer: GradientTrainer) -> None:
        write_text(self.path, history_csv(trainer.state.history))


class ProgressCallback(Callback):
    """A Rich progress bar: epoch, losses, time elapsed and left."""

    def __init__(self, description: str = "train"):
        self.description = description
        self.progress: Progress | None = None

    def on_train_start(self, trainer: GradientTrainer) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
            TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TextColumn("left"),
            TimeRemainingColumn(), transient=False)
        self.progress.start()
        spec = trainer.spec
        total = spec.epochs if spec.method == "gradient" else spec.generations
        self.task = self.progress.add_task(self.description, total=total,
                                           completed=trainer.state.epoch, losses="")

    def on_epoch_end(self, trainer: GradientTrainer) -> None:
        row = trainer.state.history[-1]
        losses = f"loss {row['train_loss']:.4g}"
        if not math.isnan(row["val_loss"]):
            losses += f"  val {row['val_loss']:.4g}"
        self.progress.update(self.task, completed=trainer.state.epoch, losses=losses)

    def on_train_end(self, trainer: GradientTrainer) -> None:
        if self.progress is not None:
            self.progress.stop()
