"""The genetic algorithm of the GA paper, and its generalisations
(selection, crossover, Gaussian mutation, the 1/5th success rule)."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from .. import operators as op
from ..mutants import Mutants
from ..population import Population, check_finite


class GA:
    """Elitist GA; the defaults are the GA paper's mutation-only scheme.

    In that scheme (selection ``best``, elitism 1, no crossover) every
    child is the best individual with a few weights changed, so the
    population is kept as :class:`Mutants` -- one parent vector and the
    changes -- and scored through them; the (P, n) tensor is built only
    when asked for (:attr:`P`, checkpoints).  On the 784-64-784 AE that
    saves copying 20 MB of population every generation."""

    def __init__(self, spec, pop: Population, theta0: torch.Tensor, gen: torch.Generator):
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
