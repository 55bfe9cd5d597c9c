"""Callbacks for :class:`GradientTrainer`: checkpoint, history file, progress bar."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..atomic import write_text
from .checkpoint import CheckpointPolicy, save_checkpoint, save_tensors_and_state
from .gradient import Callback, GradientTrainer
from .progress import ProgressCallback  # noqa: F401 (re-exported: it lives in progress.py)

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
    """Write a resumable checkpoint when :class:`CheckpointPolicy` says so
    (``train.checkpoint_every`` epochs / ``train.checkpoint_seconds``) and
    when training ends."""

    def __init__(self, path: str | Path, *, every: int | None = None, seconds: float | None = None):
        self.path, self.policy = Path(path), CheckpointPolicy(every, seconds)

    def save(self, trainer) -> None:
        save_checkpoint(self.path, trainer)

    def on_train_start(self, trainer) -> None:
        self.policy.start(trainer.state.epoch)

    def on_epoch_end(self, trainer) -> None:
        if _ending(trainer):
            return  # on_train_end writes the final state right after this
        if self.policy.due(trainer.state.epoch):
            self.save(trainer)
            self.policy.saved(trainer.state.epoch)

    def on_train_end(self, trainer) -> None:
        self.save(trainer)
        self.policy.saved(trainer.state.epoch)


class StateCheckpointCallback(CheckpointCallback):
    """The same policy for a trainer that hands over its own state
    (``checkpoint() -> (tensors, meta)``): GA/ES (the population or strategy
    state, tens of MB for a large population) and adversarial training."""

    def save(self, trainer) -> None:
        save_tensors_and_state(self.path, *trainer.checkpoint())


def _ending(trainer) -> bool:
    """Whether the epoch just recorded is the run's last one."""
    spec, state = trainer.spec, trainer.state
    return state.status != "running" or state.epoch >= spec.budget


class HistoryCallback(Callback):
    """Rewrite ``history.csv`` (atomically) after every epoch.

    Not flushed to disk (``durable=False``): the rename already makes it
    whole or old when the process is killed, and after a power loss the file
    is re-derived -- a resumed run rewrites it after its first epoch from the
    history its checkpoint carries.  A flush per epoch would put a disk stall
    into every epoch of a run on a busy disk.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_epoch_end(self, trainer: GradientTrainer) -> None:
        write_text(self.path, history_csv(trainer.state.history), durable=False)
