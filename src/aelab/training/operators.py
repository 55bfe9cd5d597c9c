"""Genetic operators on a whole population at once (no per-individual or
per-gene Python loops).  Each takes a ``torch.Generator`` so a run is
reproducible; individuals are rows of a ``(P, n)`` tensor and lower fitness
is better.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def _on(t: Tensor, like: Tensor) -> Tensor:
    """Random draws come from a CPU generator (reproducible on any device)
    and move to the population's device."""
    return t.to(like.device, non_blocking=True)


# ------------------------------------------------------------ selection
def select_best(fitness: Tensor, m: int, gen: torch.Generator) -> Tensor:
    """The GA paper's rule: every child descends from the single best."""
    return fitness.argmin().repeat(m)


def select_tournament(fitness: Tensor, m: int, gen: torch.Generator, size: int = 3) -> Tensor:
    """m tournaments of ``size`` random individuals; each winner is a parent."""
    entrants = _on(torch.randint(len(fitness), (m, size), generator=gen), fitness)
    return entrants.gather(1, fitness[entrants].argmin(1, keepdim=True)).squeeze(1)


def select_rank(fitness: Tensor, m: int, gen: torch.Generator) -> Tensor:
    """Linear rank selection: the best of P is P times likelier than the worst."""
    rank = torch.empty(len(fitness)).scatter_(0, fitness.argsort().cpu(), torch.arange(len(fitness), 0, -1.0))
    return _on(torch.multinomial(rank, m, replacement=True, generator=gen), fitness)


# ------------------------------------------------------------ crossover
def crossover_uniform(a: Tensor, b: Tensor, gen: torch.Generator) -> Tensor:
    """Each gene from either parent with probability 1/2."""
    return torch.where(_on(torch.rand(a.shape, generator=gen), a) < 0.5, a, b)


def crossover_one_point(a: Tensor, b: Tensor, gen: torch.Generator) -> Tensor:
    """Genes before a random cut from ``a``, after it from ``b``."""
    cut = _on(torch.randint(1, a.shape[1], (len(a), 1), generator=gen), a)
    return torch.where(torch.arange(a.shape[1], device=a.device) < cut, a, b)


# ------------------------------------------------------------- mutation
def mutate_uniform(children: Tensor, k: int, gen: torch.Generator, scale: float = 1.0) -> Tensor:
    """The GA paper's mutation: k random genes of each child get a
    uniform(-scale, scale) number added (relative, not replaced)."""
    return mutate_uniform_(children.clone(), k, gen, scale)


def mutate_uniform_(children: Tensor, k: int, gen: torch.Generator, scale: float = 1.0) -> Tensor:
    """:func:`mutate_uniform` in place (no copy of the population)."""
    return children.scatter_add_(1, *uniform_changes(children.shape, k, gen, scale, children.device))


def uniform_changes(shape: tuple[int, int], k: int, gen: torch.Generator, scale: float = 1.0,
                    device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """The draws of :func:`mutate_uniform` for ``shape[0]`` children of
    ``shape[1]`` genes: which k genes of each (m, k) and what is added to
    them (m, k)."""
    m, n = shape
    idx = torch.randint(n, (m, k), generator=gen).to(device, non_blocking=True)
    delta = ((torch.rand(m, k, generator=gen) * 2 - 1) * scale).to(device, non_blocking=True)
    return idx, delta


def mutate_gaussian(children: Tensor, rate: float, sigma: float, gen: torch.Generator) -> Tensor:
    """Each gene, with probability ``rate``, gets N(0, sigma^2) added."""
    return mutate_gaussian_(children.clone(), rate, sigma, gen)


def mutate_gaussian_(children: Tensor, rate: float, sigma: float, gen: torch.Generator) -> Tensor:
    """:func:`mutate_gaussian` in place."""
    mask, noise = gaussian_changes(children, rate, sigma, gen)
    return children.add_(mask * noise)


def gaussian_changes(children: Tensor, rate: float, sigma: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """The draws of :func:`mutate_gaussian`: which genes change (a boolean
    mask like ``children``) and the N(0, sigma^2) numbers added where it is set."""
    mask = _on(torch.rand(children.shape, generator=gen), children) < rate
    return mask, _on(torch.randn(children.shape, generator=gen), children) * sigma


def one_fifth_rule(sigma: float, success: float, factor: float = 1.22) -> float:
    """Rechenberg's 1/5th success rule: widen the step when more than a fifth
    of the children beat their parent, narrow it otherwise."""
    return sigma * factor if success > 0.2 else sigma / factor


# -------------------------------------------------------- ES utilities
def centered_ranks(fitness: Tensor) -> Tensor:
    """Utilities in [-0.5, 0.5], best (lowest fitness) highest (Salimans et al. 2017)."""
    ranks = torch.empty_like(fitness).scatter_(0, fitness.argsort(descending=True),
                                               torch.arange(len(fitness), dtype=fitness.dtype, device=fitness.device))
    return ranks / (len(fitness) - 1) - 0.5


def snes_utilities(fitness: Tensor) -> Tensor:
    """SNES fitness shaping (Schaul et al. 2011): log-rank weights summing to 0."""
    lam = len(fitness)
    raw = torch.clamp(torch.log(torch.tensor(lam / 2 + 1.0)) - torch.log(torch.arange(1, lam + 1.0)), min=0)
    u = (raw / raw.sum() - 1.0 / lam).to(fitness.device)
    return torch.empty_like(fitness).scatter_(0, fitness.argsort(), u)
