"""The minibatch gradient trainer.

The data set lives as one tensor on the device and a batch is an index
slice of a per-epoch permutation: no DataLoader, no per-sample Python.  The
trainer knows nothing about the model; it calls an objective and hangs
checkpointing, progress and history off callbacks (minGPT's ``trainer.py``).

Determinism: the permutation of epoch ``e`` and the global RNG used inside
epoch ``e`` (VAE noise, dropout) are seeded from ``(train.seed, e)``, so a run
resumed from the checkpoint of epoch ``e`` replays exactly what an
uninterrupted run does.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch

from ..spec import TrainSpec
from .objectives import Objective
from .lazy_dynamo import step as optimizer_step
from .optim import make_optimizer, make_scheduler


def epoch_loop(trainer, one_epoch) -> "TrainState":
    """What every epoch-based trainer runs: ``one_epoch()`` from
    ``state.epoch`` up to ``spec.epochs`` while the state is running, the
    callbacks around it, and ``trainer._finish()`` when it ran to the end."""
    for cb in trainer.callbacks:
        cb.on_train_start(trainer)
    while trainer.state.status == "running" and trainer.state.epoch < trainer.spec.epochs:
        one_epoch()
        for cb in trainer.callbacks:
            cb.on_epoch_end(trainer)
    if trainer.state.status == "running":
        trainer._finish()
    for cb in trainer.callbacks:
        cb.on_train_end(trainer)
    return trainer.state


def rows(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[idx]`` for an index tensor of any shape, by ``index_select``: the
    same rows, copied 3-9x faster than advanced indexing on the CPU (a
    minibatch of mnist: 15 against 135 us)."""
    return t.index_select(0, idx.reshape(-1)).view(*idx.shape, *t.shape[1:])


def epoch_seed(seed: int, epoch: int) -> int:
    """A distinct, reproducible seed for each (run seed, epoch) pair."""
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**63 - 1)


@dataclass
class TrainState:
    """Everything besides weights and optimizer that a resumed run needs."""

    epoch: int = 0  # epochs completed
    history: list[dict] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    status: str = "running"  # running | completed | diverged
    stopped_early: bool = False
    best_weights: dict[str, torch.Tensor] | None = None
    stages: list = field(default_factory=list)  # evolution: (generation, best vector) snapshots


class Callback:
    """Hooks called by :class:`GradientTrainer`; override what you need."""

    def on_train_start(self, trainer: "GradientTrainer") -> None: ...

    def on_epoch_end(self, trainer: "GradientTrainer") -> None: ...

    def on_train_end(self, trainer: "GradientTrainer") -> None: ...


class GradientTrainer:
    """Minibatch training of ``model`` under ``objective`` as ``spec`` says."""

    def __init__(self, model: torch.nn.Module, objective: Objective, spec: TrainSpec,
                 callbacks: list[Callback] | tuple = ()):
        self.model, self.objective, self.spec = model, objective, spec
        self.callbacks = list(callbacks)
        self.optimizer = make_optimizer(model.parameters(), spec)
        self.scheduler = make_scheduler(self.optimizer, spec)
        self.state = TrainState()
        self.device = next(model.parameters()).device

    # ------------------------------------------------------------ the loop
    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor | None,
            x_val: torch.Tensor, y_val: torch.Tensor | None) -> TrainState:
        """Train from ``state.epoch`` up to ``spec.epochs``; returns the final state."""
        return epoch_loop(self, lambda: self._one_epoch(x_train, y_train, x_val, y_val))

    def _one_epoch(self, x, y, x_val, y_val) -> None:
        epoch, start = self.state.epoch, time.perf_counter()
        torch.manual_seed(epoch_seed(self.spec.seed, epoch))
        train = self.train_epoch(x, y, epoch)
        val = self.evaluate_loss(x_val, y_val, epoch) if len(x_val) else {}
        row = {"epoch": epoch + 1, "train_loss": train.pop("loss"), "val_loss": val.pop("loss", math.nan),
               "lr": self.optimizer.param_groups[0]["lr"]}
        row.update({f"train_{k}": v for k, v in train.items()})
        row.update({f"val_{k}": v for k, v in val.items()})
        row["seconds"] = time.perf_counter() - start
        self.state.history.append(row)
        self.state.epoch = epoch + 1
        self._after_epoch(row, has_val=len(x_val) > 0)

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor | None, epoch: int) -> dict[str, float]:
        """One pass over a fresh permutation; returns mean loss and parts."""
        self.model.train()
        n, bs = len(x), self.spec.batch_size
        gen = torch.Generator().manual_seed(epoch_seed(self.spec.seed, epoch))
        perm = torch.randperm(n, generator=gen).to(x.device)
        totals: dict[str, torch.Tensor] = {}
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            loss, parts = self.objective(self.model, rows(x, idx), None if y is None else rows(y, idx), epoch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.spec.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.grad_clip)
            optimizer_step(self.optimizer)  # optimizer.step() without importing torch._dynamo
            _accumulate(totals, {"loss": loss.detach(), **parts}, len(idx))
        return {k: float(v) / n for k, v in totals.items()}

    @torch.no_grad()
    def evaluate_loss(self, x: torch.Tensor, y: torch.Tensor | None, epoch: int,
                      batch_size: int = 1024) -> dict[str, float]:
        """Mean objective on ``x`` in eval mode (a VAE decodes ``mu``)."""
        self.model.eval()
        totals: dict[str, torch.Tensor] = {}
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], None if y is None else y[i:i + batch_size]
            loss, parts = self.objective(self.model, xb, yb, epoch)
            _accumulate(totals, {"loss": loss, **parts}, len(xb))
        return {k: float(v) / len(x) for k, v in totals.items()}

    # ------------------------------------------------ bookkeeping per epoch
    def _after_epoch(self, row: dict, has_val: bool) -> None:
        if not math.isfinite(row["train_loss"]) or (has_val and not math.isfinite(row["val_loss"])):
            self.state.status = "diverged"  # NaN/inf loss: stop cleanly, epoch recorded
            return
        monitored = row["val_loss"] if has_val else row["train_loss"]
        self._step_scheduler(monitored)
        self._track_best(monitored, row["epoch"])

    def _step_scheduler(self, monitored: float) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def _track_best(self, monitored: float, epoch: int) -> None:
        """Early stopping on the validation loss (training loss without a
        validation split), keeping the best weights when asked to."""
        s = self.state
        if monitored < s.best_val - self.spec.min_delta:
            s.best_val, s.best_epoch, s.bad_epochs = monitored, epoch, 0
            if self.spec.early_stopping and self.spec.restore_best:
                s.best_weights = copy.deepcopy(self.model.state_dict())
        else:
            s.bad_epochs += 1
        if self.spec.early_stopping and s.bad_epochs >= self.spec.early_stopping:
            s.stopped_early = True
            self._finish()

    def _finish(self) -> None:
        if self.state.best_weights is not None:
            self.model.load_state_dict(self.state.best_weights)
        self.state.status = "completed"


def _accumulate(totals: dict[str, torch.Tensor], values: dict[str, torch.Tensor], n: int) -> None:
    for k, v in values.items():
        totals[k] = totals[k] + v * n if k in totals else v * n
