"""Everything about an architecture study checked before anything is written."""
from __future__ import annotations

import numpy as np

from ...data import load_dataset
from ...errors import ConfigError
from ...spec import load_config
from .space import Space, genome_kinds


def check_architecture(spec, base: dict, budget: int, label: str) -> tuple[int, int, int]:
    """Validate the ``architecture:`` block against the strategy, the budget and
    the data; returns the data's image shape (C, H, W)."""
    arch = spec.architecture
    if spec.strategy == "grid":
        raise ConfigError(f"{label}: strategy grid cannot enumerate an architecture space; "
                          f"use article-rule, aging-evolution, random, tpe or nsga2")
    if spec.strategy == "article-rule" and len(spec.objectives) != 1:
        raise ConfigError(f"{label}: strategy article-rule keeps a mutant only if it scores better, "
                          f"so it needs exactly one objective (got {len(spec.objectives)})")
    if budget < arch.population:
        raise ConfigError(f"{label}: trials: a budget of {budget} is smaller than "
                          f"architecture.population {arch.population}; the first generation would not finish")
    cfg = load_config(base)
    if cfg.model.kind not in genome_kinds():
        raise ConfigError(f"{label}: base: model.kind {cfg.model.kind!r} has no architecture to evolve "
                          f"(the genome holds kinds {', '.join(genome_kinds())})")
    shape = load_dataset(cfg.data).shape
    space = Space.resolve(arch, base, shape)
    try:
        space.random_feasible(np.random.default_rng(0), tries=200)
    except ConfigError as e:
        raise ConfigError(f"{label}: {e}") from None
    return shape
