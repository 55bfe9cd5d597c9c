"""Choosing the next architecture to train.

* ``article-rule`` -- the VAE article's algorithm: ``population`` random
  architectures; then, round after round, each individual's mutant (by
  :func:`~.mutation.article_rule`) is trained and replaces it only if it
  scored better.  Each individual is its own lineage (a *slot*), so with
  several workers the slots advance in parallel; a slot's next mutant waits
  for its previous one to finish.
* ``aging-evolution`` -- regularized evolution (Real et al. 2019): the
  population is the ``population`` most recently trained architectures
  (the oldest leaves as a child arrives); a tournament of ``tournament``
  picks the parent, whose mutant is trained.  With several objectives the
  tournament compares Pareto ranks within the population.
* ``random`` / ``tpe`` / ``nsga2`` -- the genome drawn through Optuna's
  samplers (depth, then one width per layer, ...), the baselines.

Proposals are made under a lock and recorded on the trial before training,
so concurrent workers never claim the same slot, and are drawn from a
generator seeded by (study seed, claim index): one worker repeats exactly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import optuna

from ..context import recover_dead
from ...outdir import file_lock
from ..trial import TrialFailed
from .history import Member, fitness, key, members, pareto_ranks
from .mutation import article_rule, mutate
from .space import Architecture, Space

EVOLVED = ("article-rule", "aging-evolution")
POLL_SECONDS = 0.5


@dataclass
class Proposal:
    arch: Architecture
    generation: int
    how: str
    slot: int | None = None
    parent: int | None = None
    skipped: list[str] = field(default_factory=list)


def propose(study: optuna.Study, trial: optuna.Trial, ctx, space: Space) -> Proposal:
    """Claim the next architecture for ``trial`` and record it on the trial."""
    if ctx.strategy not in EVOLVED:
        history = members(study)
        return _record(trial, _sampled(trial, space, len(history)), history, ctx)
    while True:
        with file_lock(ctx.study_dir / ".propose.lock"):
            history = members(study)
            rng = np.random.default_rng([ctx.seed, len(history)])
            pick = _article if ctx.strategy == "article-rule" else _aging
            proposal = pick(history, ctx, space, rng)
            if proposal is not None:
                return _record(trial, proposal, history, ctx)
        time.sleep(POLL_SECONDS)  # every slot waits on a running mutant (several workers) ...
        recover_dead(study, ctx)  # ... whose worker may have died


def _record(trial: optuna.Trial, p: Proposal, history: list[Member], ctx) -> Proposal:
    """Write the claim on the trial: the next worker's history includes it."""
    first = {m.arch.canonical(): m.number for m in reversed(history)}
    attrs = {"arch": p.arch.as_dict(), "index": len(history), "generation": p.generation,
             "slot": p.slot, "parent": p.parent, "how": p.how, "skipped": p.skipped[:10],
             "layers": p.arch.layers}
    if p.arch.canonical() in first:
        attrs["duplicate_of"] = first[p.arch.canonical()]
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    return p


def _seen(history: list[Member]) -> set[str]:
    return {m.arch.canonical() for m in history}


def _fresh(space: Space, rng: np.random.Generator, seen: set[str], tries: int = 20) -> Architecture:
    """A random feasible genome, unseen when possible."""
    arch = space.random_feasible(rng)
    for _ in range(tries):
        if arch.canonical() not in seen:
            break
        arch = space.random_feasible(rng)
    return arch


# --------------------------------------------------------- the article


def _article(history: list[Member], ctx, space: Space, rng: np.random.Generator) -> Proposal | None:
    size = space.spec.population
    if len(history) < size:
        return Proposal(_fresh(space, rng, _seen(history)), generation=0, slot=len(history), how="random")
    slot = _next_slot(history, size)
    if slot is None:
        return None
    lineage = [m for m in history if m.slot == slot]
    generation = lineage[-1].generation + 1
    parent = _current(lineage, ctx.directions)
    if parent is None:  # no member of this slot ever scored: start it afresh
        return Proposal(_fresh(space, rng, _seen(history)), generation, "random (slot had no scored individual)",
                        slot=slot)
    child, how = article_rule(parent.arch, space, rng)
    reason = space.infeasible(child)
    if reason:
        child, how, skipped = parent.arch, f"{how}: skipped, parent kept", [f"{how}: {reason}"]
        return Proposal(child, generation, how, slot=slot, parent=parent.number, skipped=skipped)
    return Proposal(child, generation, how, slot=slot, parent=parent.number)


def _next_slot(history: list[Member], size: int) -> int | None:
    """The slot whose last member finished and that is furthest behind."""
    last: dict[int, Member] = {}
    for m in history:
        last[m.slot] = m
    ready = [s for s in range(size) if s in last and last[s].done]
    return min(ready, key=lambda s: (last[s].generation, s)) if ready else None


def _current(lineage: list[Member], directions: list[str]) -> Member | None:
    """The slot's individual: each mutant replaced it only if it scored better."""
    current = None
    for m in lineage:
        if m.scored and (current is None or fitness(m, directions) < fitness(current, directions)):
            current = m
    return current


# ------------------------------------------------------ aging evolution


def _aging(history: list[Member], ctx, space: Space, rng: np.random.Generator) -> Proposal:
    size, index = space.spec.population, len(history)
    generation = index // size
    seen = _seen(history)
    population = [m for m in history if m.scored][-size:]  # the oldest ones have aged out
    if index < size or not population:
        return Proposal(_fresh(space, rng, seen), generation, "random")
    sample = [population[i] for i in rng.choice(len(population), min(space.spec.tournament, len(population)),
                                                replace=False)]
    parent = _tournament(sample, population, ctx.directions)
    made = mutate(parent.arch, space, rng, seen)
    if made is None:
        return Proposal(_fresh(space, rng, seen), generation, "random (no feasible mutant)",
                        skipped=[f"parent trial {parent.number}: no feasible mutation"])
    return Proposal(made.child, generation, made.how, parent=parent.number, skipped=made.skipped)


def _tournament(sample: list[Member], population: list[Member], directions: list[str]) -> Member:
    """The best of the sample: by fitness, or by Pareto rank within the population."""
    if len(directions) == 1:
        return min(sample, key=lambda m: fitness(m, directions))
    ranks = pareto_ranks([key(list(m.values), directions) for m in population])
    rank = {m.number: r for m, r in zip(population, ranks)}
    return min(sample, key=lambda m: rank[m.number])


# ------------------------------------------------ sampler-driven baselines


def _sampled(trial: optuna.Trial, space: Space, index: int) -> Proposal:
    """The genome through Optuna's suggest API (random search, TPE, NSGA-II)."""
    s = space.spec
    n_conv = _int(trial, "conv_layers", s.conv_layers.low, s.conv_layers.high)
    conv = tuple(_int(trial, f"filters_{j}", s.filters.low, s.filters.high, log=True) for j in range(n_conv))
    n_dense = _int(trial, "layers", *space.dense_range(n_conv))
    first = [space.input_size] if space.fixed_first else []
    dense = first + [_int(trial, f"units_{j}", s.units.low, s.units.high, log=True)
                     for j in range(len(first), n_dense)]
    arch = Architecture(kind=_cat(trial, "kind", space.kinds), conv=conv, dense=tuple(dense),
                        activation=_cat(trial, "activation", space.activations),
                        latent_dim=_cat(trial, "latent_dim", space.latent_dims))
    reason = space.infeasible(arch)
    if reason:
        trial.set_user_attr("arch_rejected", arch.as_dict())
        raise TrialFailed(f"infeasible architecture {arch.label()}: {reason}")
    return Proposal(arch, generation=index // s.population, how="sampled")


def _int(trial: optuna.Trial, name: str, low: int, high: int, log: bool = False) -> int:
    return low if low == high else trial.suggest_int(name, low, high, log=log)


def _cat(trial: optuna.Trial, name: str, choices: tuple):
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))
