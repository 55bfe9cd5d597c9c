"""Trainers as plug-ins (:mod:`aelab.training.registry`): minibatch gradient
descent, and gradient-free evolution (GA / ES) over a batched population of
networks.  Names are imported on first use, so the trainer registry and the
``train`` specs load without torch."""
from __future__ import annotations

import importlib

_EXPORTS = {"GA": "strategies.ga", "EvolutionTrainer": "evolution", "Callback": "gradient",
            "GradientTrainer": "gradient", "TrainState": "gradient", "Mutants": "mutants",
            "make_objective": "objectives", "Population": "population", "trainer": "registry",
            "methods": "registry", "Trainer": "registry"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
