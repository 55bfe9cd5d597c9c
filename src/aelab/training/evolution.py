"""Gradient-free training: a genetic algorithm (GA) or an evolution strategy
(ES) over flat weight vectors, with the whole population evaluated in one
batched computation (:class:`Population`).

Fitness is the GA paper's: mean absolute error between reconstruction and
input (lower is better).  With ``fitness_batch`` every generation draws a new
minibatch and re-evaluates everybody on it -- elites included, so no stale
fitness survives.  The trainer has the same surface as the gradient trainer
(``fit``, ``state``, callbacks), so a GA run is an ordinary run directory.
"""
from __future__ import annotations

import logging
import math
import time

import torch

from ..errors import ConfigError
from .gradient import Callback, TrainState, epoch_seed
from .population import Population
from .strategies import strategy

log = logging.getLogger(__name__)


def mean_sigma(sigma) -> float:
    """A strategy's step size for the history: a number, or the mean of a per-weight vector."""
    return float(sigma.mean()) if torch.is_tensor(sigma) else float(sigma)


EVOLUTION_FORMAT = "aelab-evolution-1"


class EvolutionTrainer:
    """GA / ES training of an autoencoder; same surface as GradientTrainer."""

    def __init__(self, model: torch.nn.Module, spec, callbacks: list[Callback] | tuple = ()):
        self.model, self.spec, self.callbacks = model, spec, list(callbacks)
        self.pop = Population(model)
        self.state = TrainState()
        self.device = next(model.parameters()).device
        self.gen = torch.Generator().manual_seed(spec.seed)
        self.strategy = strategy(spec.strategy)(spec, self.pop, self.pop.vector(), self.gen)
        self.best = self.pop.vector()
        self.discarded, self.elapsed = 0, 0.0

    def fit(self, x: torch.Tensor, y, x_val: torch.Tensor, y_val) -> TrainState:
        """Evolve for ``generations`` or until ``max_seconds``; the best (GA) or
        mean (ES) individual ends up in the model."""
        for cb in self.callbacks:
            cb.on_train_start(self)
        start = last = time.perf_counter() - self.elapsed  # a resumed run keeps its time budget
        g = self.state.epoch
        while self.state.status == "running" and g < self.spec.generations and not self._out_of_time(start):
            torch.manual_seed(epoch_seed(self.spec.seed, g))
            best, fit = self.strategy.step(self.pop, self._batch(x), self.gen)
            self.best, g = best.clone(), g + 1
            self._count_discarded(fit)
            if g % self.spec.log_every == 0 or g == self.spec.generations or self._out_of_time(start):
                self.elapsed = time.perf_counter() - start
                self._record(g, fit, x, x_val, time.perf_counter() - last)
                last = time.perf_counter()
        self.pop.load(self.best)
        self.state.status = "completed"
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.state

    def _snapshot(self, g: int, keep: int = 16) -> None:
        """Keep the best individual at evenly spaced generations (at most
        ``keep``: every other one is dropped when full) for the stages strip."""
        self.state.stages.append((g, self.best.clone()))
        if len(self.state.stages) > keep:
            self.state.stages = self.state.stages[1::2] if len(self.state.stages) % 2 == 0 \
                else self.state.stages[::2]

    # ------------------------------------------------------- checkpoints
    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON-able state) from which :meth:`restore` resumes exactly."""
        tensors = {f"strategy.{k}": v for k, v in self.strategy.tensors().items()}
        tensors |= {"best": self.best, "rng.gen": self.gen.get_state()}
        tensors |= {f"stage.{i}": v for i, (_, v) in enumerate(self.state.stages)}
        meta = {"format": EVOLUTION_FORMAT, "generation": self.state.epoch, "history": self.state.history,
                "status": self.state.status, "stages": [g for g, _ in self.state.stages],
                "strategy": self.strategy.meta(), "elapsed": self.elapsed, "discarded": self.discarded}
        return tensors, meta

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        if meta.get("format") != EVOLUTION_FORMAT:
            raise ConfigError(f"checkpoint: not an evolution checkpoint (format {meta.get('format')!r})")
        tensors = {k: v if k.startswith("rng.") else v.to(self.device) for k, v in tensors.items()}
        self.strategy.load({k[9:]: v for k, v in tensors.items() if k.startswith("strategy.")}, meta["strategy"])
        self.best, self.elapsed, self.discarded = tensors["best"], meta["elapsed"], meta["discarded"]
        self.gen.set_state(tensors["rng.gen"])
        self.state = TrainState(epoch=meta["generation"], history=meta["history"], status=meta["status"],
                                stages=[(g, tensors[f"stage.{i}"]) for i, g in enumerate(meta["stages"])])
        self.pop.load(self.best)

    def _out_of_time(self, start: float) -> bool:
        return self.spec.max_seconds is not None and time.perf_counter() - start >= self.spec.max_seconds

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        if not self.spec.fitness_batch or self.spec.fitness_batch >= len(x):
            return x
        return x[torch.randperm(len(x), generator=self.gen)[: self.spec.fitness_batch].to(x.device)]

    def _count_discarded(self, fit: torch.Tensor) -> None:
        bad = int(torch.isinf(fit).sum())
        if bad:
            self.discarded += bad
            log.warning("%d individual(s) with non-finite fitness discarded (%d so far)", bad, self.discarded)

    def _record(self, g: int, fit: torch.Tensor, x: torch.Tensor, x_val: torch.Tensor, seconds: float) -> None:
        best = self.best.unsqueeze(0)
        finite = fit[torch.isfinite(fit)]
        f = self.spec.fitness
        row = {"epoch": g, "train_loss": float(self.pop.fitness(best, x, f)[0]),
               "val_loss": float(self.pop.fitness(best, x_val, f)[0]) if len(x_val) else math.nan,
               "mean_fitness": float(finite.mean()) if len(finite) else math.nan,
               "sigma": mean_sigma(getattr(self.strategy, "sigma", self.spec.sigma)), "seconds": seconds}
        self.state.history.append(row)
        self.state.epoch = g
        self._snapshot(g)
        for cb in self.callbacks:
            cb.on_epoch_end(self)
