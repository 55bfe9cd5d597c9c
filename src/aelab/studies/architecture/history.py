"""An architecture study's history, read back from the Optuna storage.

Every trial of an architecture study carries its genome and how it came to
be in user attributes (``arch``, ``index``, ``generation``, ``slot``,
``parent``, ``how``).  Strategies decide from this history alone, so any
number of workers, in any process, see the same state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from ..context import counted
from .space import Architecture


@dataclass
class Member:
    """One claimed trial of an architecture study."""

    number: int
    state: TrialState
    arch: Architecture
    index: int
    generation: int
    slot: int | None
    parent: int | None
    how: str
    values: list[float] | None
    attrs: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in (TrialState.COMPLETE, TrialState.FAIL)

    @property
    def scored(self) -> bool:
        return self.state == TrialState.COMPLETE and self.values is not None


def members(study: optuna.Study) -> list[Member]:
    """Claimed trials that count (not retried, not over budget), by claim index."""
    out = []
    for t in counted(study.get_trials(deepcopy=False)):
        a = t.user_attrs
        if "arch" not in a or t.state == TrialState.WAITING:
            continue
        out.append(Member(number=t.number, state=t.state, arch=Architecture.from_dict(a["arch"]),
                          index=a["index"], generation=a["generation"], slot=a.get("slot"),
                          parent=a.get("parent"), how=a.get("how", ""), values=t.values, attrs=dict(a)))
    return sorted(out, key=lambda m: (m.index, m.number))


def key(values: list[float], directions: list[str]) -> tuple[float, ...]:
    """A sort key where smaller is better, whatever each objective's direction."""
    return tuple(v if d == "minimize" else -v for v, d in zip(values, directions))


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_ranks(keys: list[tuple[float, ...]]) -> list[int]:
    """Non-domination rank of each point (0 = on the Pareto front), by peeling fronts."""
    ranks = [-1] * len(keys)
    left, rank = set(range(len(keys))), 0
    while left:
        front = {i for i in left if not any(dominates(keys[j], keys[i]) for j in left if j != i)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def fitness(m: Member, directions: list[str]) -> tuple[float, ...]:
    """``key`` of a member's objectives; unscored members sort last."""
    if not m.scored:
        return tuple(math.inf for _ in directions)
    return key(list(m.values), directions)
