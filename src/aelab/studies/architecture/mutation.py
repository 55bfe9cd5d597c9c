"""Mutations of an :class:`Architecture`.

* :func:`article_rule` -- the VAE article's rule, exactly: with more than
  ``shrink_above`` (4) layers one random layer is removed; otherwise layer k
  gets k units more (the first layer, position 0, gets none).
* :data:`OPERATORS` -- the general operators of aging evolution (Real et al.
  2019, "Regularized evolution for image classifier architecture search"):
  add / remove a layer, widen / narrow one, change the activation or the
  latent size, switch AE <-> VAE, turn a dense layer into a conv block or
  back.  :func:`mutate` draws one that applies, and repairs or redraws a
  child that falls outside the space or cannot be built, recording why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .space import Architecture, Space, log_uniform


def article_rule(arch: Architecture, space: Space, rng: np.random.Generator) -> tuple[Architecture, str]:
    """The article's mutation.  With ``first_layer: input`` the first layer is
    never removed (it carries the constraint that makes the mirror end at the
    input's shape)."""
    dense = list(arch.dense)
    if arch.layers > space.spec.shrink_above:
        first = 1 if space.fixed_first else 0
        if len(dense) > first:
            i = int(rng.integers(first, len(dense)))
            del dense[i]
            return arch.with_(dense=tuple(dense)), f"remove layer {i}"
        i = int(rng.integers(0, len(arch.conv)))
        return arch.with_(conv=arch.conv[:i] + arch.conv[i + 1:]), f"remove conv block {i}"
    return arch.with_(dense=tuple(u + k for k, u in enumerate(dense))), "add k units to layer k"


# ------------------------------------------------------- general operators

Op = Callable[[Architecture, Space, np.random.Generator], "Architecture | None"]


def _free(space: Space, arch: Architecture) -> range:
    """Positions of dense layers a mutation may touch."""
    return range(1 if space.fixed_first else 0, len(arch.dense))


def add_layer(arch, space, rng):
    if len(arch.dense) >= space.spec.layers.high:
        return None
    pos = int(rng.integers(1 if space.fixed_first else 0, len(arch.dense) + 1))
    width = log_uniform(rng, space.spec.units.low, space.spec.units.high)
    return arch.with_(dense=arch.dense[:pos] + (width,) + arch.dense[pos:])


def remove_layer(arch, space, rng):
    free = _free(space, arch)
    if len(arch.dense) <= max(space.spec.layers.low, 1 if not arch.conv else 0) or not free:
        return None
    i = int(rng.choice(list(free)))
    return arch.with_(dense=arch.dense[:i] + arch.dense[i + 1:])


def _resize(factor_low: float, factor_high: float) -> Op:
    def op(arch, space, rng):
        free = list(_free(space, arch))
        if not free:
            return None
        i = int(rng.choice(free))
        u = int(round(arch.dense[i] * rng.uniform(factor_low, factor_high)))
        u = min(max(u, space.spec.units.low), space.spec.units.high)
        return None if u == arch.dense[i] else arch.with_(dense=arch.dense[:i] + (u,) + arch.dense[i + 1:])
    return op


def change_activation(arch, space, rng):
    others = [a for a in space.activations if a != arch.activation]
    return arch.with_(activation=str(rng.choice(others))) if others else None


def change_latent(arch, space, rng):
    others = [d for d in space.latent_dims if d != arch.latent_dim]
    return arch.with_(latent_dim=int(rng.choice(others))) if others else None


def switch_kind(arch, space, rng):
    others = [k for k in space.kinds if k != arch.kind]
    return arch.with_(kind=others[0]) if others else None


def dense_to_conv(arch, space, rng):
    """The first free dense layer becomes a conv block (appended after the others)."""
    free = list(_free(space, arch))
    if len(arch.conv) >= space.spec.conv_layers.high or not free:
        return None
    i = free[0]
    filters = log_uniform(rng, space.spec.filters.low, space.spec.filters.high)
    return arch.with_(conv=arch.conv + (filters,), dense=arch.dense[:i] + arch.dense[i + 1:])


def conv_to_dense(arch, space, rng):
    """The last conv block becomes a dense layer (the first free position)."""
    if not arch.conv or len(arch.dense) >= space.spec.layers.high:
        return None
    pos = 1 if space.fixed_first else 0
    width = log_uniform(rng, space.spec.units.low, space.spec.units.high)
    return arch.with_(conv=arch.conv[:-1], dense=arch.dense[:pos] + (width,) + arch.dense[pos:])


OPERATORS: dict[str, Op] = {
    "add layer": add_layer, "remove layer": remove_layer,
    "widen layer": _resize(1.25, 2.0), "narrow layer": _resize(0.5, 0.8),
    "change activation": change_activation, "change latent size": change_latent,
    "switch ae/vae": switch_kind, "dense -> conv": dense_to_conv, "conv -> dense": conv_to_dense,
}


@dataclass
class Mutation:
    """A child and how it was made (the skipped attempts with their reasons)."""

    child: Architecture
    how: str
    skipped: list[str] = field(default_factory=list)


def mutate(parent: Architecture, space: Space, rng: np.random.Generator, seen: set[str],
           tries: int = 30) -> Mutation | None:
    """One applicable operator's child that lies in the space, can be built and
    (when possible) was not evaluated before; None if ``tries`` draws found no
    feasible child at all."""
    skipped: list[str] = []
    fallback: Mutation | None = None
    names = list(OPERATORS)
    for _ in range(tries):
        name = names[int(rng.integers(len(names)))]
        child = OPERATORS[name](parent, space, rng)
        if child is None:
            continue  # does not apply to this parent (e.g. nothing left to remove)
        reason = space.infeasible(child)
        if reason:
            skipped.append(f"{name}: {reason}")
            continue
        if child.canonical() in seen:
            fallback = fallback or Mutation(child, f"{name} (already evaluated)")
            continue
        return Mutation(child, name, skipped)
    if fallback is not None:
        fallback.skipped = skipped
    return fallback
