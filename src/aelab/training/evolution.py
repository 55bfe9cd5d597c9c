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
from ..spec import TrainSpec
from . import operators as op
from .gradient import Callback, TrainState, epoch_seed
from .mutants import Mutants
from .pgpe import PGPE
from .population import Population, check_finite
from .sep_cma import SepCMA

log = logging.getLogger(__name__)


class GA:
    """Elitist GA; the defaults are the GA paper's mutation-only scheme.

    In that scheme (selection ``best``, elitism 1, no crossover) every
    child is the best individual with a few weights changed, so the
    population is kept as :class:`Mutants` -- one parent vector and the
    changes -- and scored through them; the (P, n) tensor is built only
    when asked for (:attr:`P`, checkpoints).  On the 784-64-784 AE that
    saves copying 20 MB of population every generation."""

    def __init__(self, spec: TrainSpec, pop: Population, theta0: torch.Tensor, gen: torch.Generator):
        if spec.mutation == "uniform" and spec.mutated_weights > pop.size:
            raise ConfigError(f"train.mutated_weights: k={spec.mutated_weights} exceeds the network's "
                              f"{pop.size} parameters")
        if spec.elitism >= spec.population:
            raise ConfigError(f"train.elitism: {spec.elitism} leaves no room for children in a "
                              f"population of {spec.population}")
        self.spec, self.sigma, self.prev_best = spec, spec.sigma, None
        self.P = initial_population(pop, theta0, spec.population, gen)

    @property
    def P(self) -> torch.Tensor:
        """The population as a (P, n) tensor.  The caller may write to it, so
        from then on it (not the mutants) is the population."""
        P, self.mutants = self._dense(), None
        return P

    @P.setter
    def P(self, value: torch.Tensor) -> None:
        self._P, self.mutants = value, None

    def _dense(self) -> torch.Tensor:
        if self._P is None:
            self._P = self.mutants.dense()
        return self._P

    def _individual(self, i: torch.Tensor) -> torch.Tensor:
        """Individual ``i`` (a one-element index tensor: no host sync)."""
        return self._P[i].squeeze(0) if self._P is not None else self.mutants.row(i)

    def step(self, pop: Population, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One generation; returns (best individual, fitness of everybody).
        Everybody, elites included, is scored on this generation's data."""
        if self.mutants is not None:
            fit = pop.fitness_mutants(self.mutants, x, self.spec.fitness, dense=self._P)
        else:
            fit = pop.fitness(self._P, x, self.spec.fitness)
        fit = check_finite(fit)
        order, e = fit.argsort(), self.spec.elitism
        if self.spec.adaptive and self.prev_best is not None:  # last generation's children vs their parent
            self.sigma = op.one_fifth_rule(self.sigma, float((fit[e:] < self.prev_best).float().mean()))
        best = self._individual(order[:1])
        self.prev_best = fit[order[:1]].squeeze(0)
        self._next_generation(fit, order[:e], gen, best)
        return best, fit

    def tensors(self) -> dict[str, torch.Tensor]:
        """The population, and its mutants when it has them: a resumed run
        then scores the next generation the same way, bit for bit."""
        out = {"P": self._dense()}
        if self.mutants is not None:
            m = self.mutants
            out.update({"mutants.parent": m.parent, "mutants.rows": m.rows, "mutants.index": m.index,
                        "mutants.delta": m.delta})
        return out

    def meta(self) -> dict:
        return {"sigma": self.sigma, "prev_best": None if self.prev_best is None else float(self.prev_best)}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.P, self.sigma = tensors["P"], meta["sigma"]
        if "mutants.parent" in tensors:
            self.mutants = Mutants(tensors["mutants.parent"], len(self._P), tensors["mutants.rows"],
                                   tensors["mutants.index"], tensors["mutants.delta"])
        self.prev_best = None if meta["prev_best"] is None else torch.tensor(meta["prev_best"], device=self._P.device)

    def _next_generation(self, fit: torch.Tensor, elites: torch.Tensor, gen: torch.Generator,
                         best: torch.Tensor) -> None:
        """Elites unchanged, then children: selected parents, optionally
        crossed, mutated.  In the GA paper's scheme the next population is
        the best individual plus each child's k changes (:class:`Mutants`);
        otherwise the elites and parents are gathered in ONE copy of the
        population and the children mutated in place."""
        s, m = self.spec, len(fit) - len(elites)
        one = self._one_parent()
        if one and s.mutation == "uniform":  # every child is a copy of the best: no selection to draw
            parent = best
            idx, delta = op.uniform_changes((m, len(parent)), s.mutated_weights, gen, self._scale(), parent.device)
            rows = torch.arange(1, m + 1, device=idx.device).repeat_interleave(idx.shape[1])
            self._P, self.mutants = None, Mutants(parent, m + 1, rows, idx.reshape(-1), delta.reshape(-1))
            return
        pick = {"best": op.select_best, "rank": op.select_rank,
                "tournament": lambda f, n, g: op.select_tournament(f, n, g, s.tournament_size)}[s.selection]
        parents = pick(fit, m, gen)
        if one:  # the elite kept is the parent itself (not another individual tied with it)
            elites = parents[:1]
        P = self._dense()
        if s.crossover == "none":
            new = P[torch.cat([elites, parents])]
        else:
            mates = P[pick(fit, m, gen)]
            cross = op.crossover_uniform if s.crossover == "uniform" else op.crossover_one_point
            new = torch.cat([P[elites], cross(P[parents], mates, gen)])
        children = new[len(elites):]  # a view: mutated in place
        if s.mutation == "uniform":
            op.mutate_uniform_(children, s.mutated_weights, gen, self._scale())
            self.P = new
            return
        mask, noise = op.gaussian_changes(children, s.mutation_rate, self.sigma, gen)
        children.add_(mask * noise)
        self.P = new
        if one:  # few genes change at a low rate: score as the elite plus those changes
            rows, idx = mask.nonzero().unbind(1)
            self.mutants = Mutants(new[0], len(new), rows + 1, idx, noise[mask])

    def _scale(self) -> float:
        """The uniform mutation's range, scaled with the adapted step size."""
        return self.sigma / self.spec.sigma if self.spec.adaptive else 1.0

    def _one_parent(self) -> bool:
        """Whether every child is a copy of the one elite (the GA paper's
        scheme), so the next population is that elite plus sparse changes."""
        s = self.spec
        return s.selection == "best" and s.crossover == "none" and s.elitism == 1


class OpenAIES:
    """OpenAI-ES (Salimans et al. 2017): antithetic Gaussian perturbations of
    one mean vector, centered-rank utilities, Adam on the gradient estimate."""

    def __init__(self, spec: TrainSpec, pop: Population, theta0: torch.Tensor, gen: torch.Generator):
        if spec.population % 2:
            raise ConfigError(f"train.population: OpenAI-ES samples antithetic pairs and needs an even "
                              f"population, got {spec.population}")
        self.spec, self.theta = spec, theta0.clone()
        self.m, self.v, self.t = torch.zeros_like(theta0), torch.zeros_like(theta0), 0

    def step(self, pop: Population, x: torch.Tensor, gen: torch.Generator):
        half = self.spec.population // 2
        eps = torch.randn(half, pop.size, generator=gen).to(self.theta.device)
        P = torch.cat([self.theta + self.spec.sigma * eps, self.theta - self.spec.sigma * eps])
        fit = check_finite(pop.fitness(P, x, self.spec.fitness))
        u = op.centered_ranks(fit)
        grad = ((u[:half] - u[half:]) @ eps) / (2 * half * self.spec.sigma)  # ascent on utility
        self._adam(-grad)
        return self.theta, fit

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"theta": self.theta, "m": self.m, "v": self.v}

    def meta(self) -> dict:
        return {"t": self.t}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.theta, self.m, self.v, self.t = tensors["theta"], tensors["m"], tensors["v"], meta["t"]

    def _adam(self, g: torch.Tensor, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
        self.t += 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        step = self.spec.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        self.theta -= step * self.m / (self.v.sqrt() + eps)


class SNES:
    """Separable natural evolution strategy (Schaul et al. 2011): a mean and a
    per-weight step size, both moved along natural-gradient estimates."""

    def __init__(self, spec: TrainSpec, pop: Population, theta0: torch.Tensor, gen: torch.Generator):
        self.spec, self.mu = spec, theta0.clone()
        self.s = torch.full_like(theta0, spec.sigma)
        self.eta_s = (3 + math.log(pop.size)) / (5 * math.sqrt(pop.size))

    def step(self, pop: Population, x: torch.Tensor, gen: torch.Generator):
        z = torch.randn(self.spec.population, pop.size, generator=gen).to(self.mu.device)
        fit = check_finite(pop.fitness(self.mu + self.s * z, x, self.spec.fitness))
        u = op.snes_utilities(fit)
        self.mu += self.spec.lr * self.s * (u @ z)
        self.s *= torch.exp(0.5 * self.eta_s * (u @ (z * z - 1)))
        return self.mu, fit

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"mu": self.mu, "s": self.s}

    def meta(self) -> dict:
        return {}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.mu, self.s = tensors["mu"], tensors["s"]


def initial_population(pop: Population, theta0: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Individual 0 is the model's own initialization; the others are fresh
    initializations (PyTorch's default schemes), seeded from ``gen``."""
    rows = [theta0]
    for _ in range(size - 1):  # once per run, not per generation
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
        for m in pop.model.modules():
            if hasattr(m, "reset_parameters") and m is not pop.model:
                m.reset_parameters()
        rows.append(pop.vector())
    pop.load(theta0)
    return torch.stack(rows)


def mean_sigma(sigma) -> float:
    """A strategy's step size for the history: a number, or the mean of a per-weight vector."""
    return float(sigma.mean()) if torch.is_tensor(sigma) else float(sigma)


STRATEGIES = {"ga": GA, "openai": OpenAIES, "snes": SNES, "pgpe": PGPE, "sepcma": SepCMA}
EVOLUTION_FORMAT = "aelab-evolution-1"


class EvolutionTrainer:
    """GA / ES training of an autoencoder; same surface as GradientTrainer."""

    def __init__(self, model: torch.nn.Module, spec: TrainSpec, callbacks: list[Callback] | tuple = ()):
        self.model, self.spec, self.callbacks = model, spec, list(callbacks)
        self.pop = Population(model)
        self.state = TrainState()
        self.device = next(model.parameters()).device
        self.gen = torch.Generator().manual_seed(spec.seed)
        kind = "ga" if spec.method == "ga" else spec.es
        self.strategy = STRATEGIES[kind](spec, self.pop, self.pop.vector(), self.gen)
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
