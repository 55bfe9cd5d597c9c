"""Gradient-free strategies over flat weight vectors, one file each, behind
one interface (:class:`Strategy`), chosen by ``train.method: ga`` or
``train.es``.  :class:`~aelab.training.evolution.EvolutionTrainer` runs any
of them on the batched :class:`~aelab.training.population.Population`."""
from __future__ import annotations

import importlib
from typing import Protocol

import torch

STRATEGIES = {"ga": "ga:GA", "openai": "openai:OpenAIES", "snes": "snes:SNES", "pgpe": "pgpe:PGPE",
              "sepcma": "sepcma:SepCMA"}


class Strategy(Protocol):
    """``__init__(spec, pop, theta0, gen)`` seeds it from the model's own
    weights ``theta0``; ``step`` scores one generation on ``x`` and returns
    (the individual to keep -- the best, or the mean --, every fitness);
    ``tensors``/``meta``/``load`` are its whole state, so a checkpoint
    resumes bit-exactly.  An optional ``sigma`` (number or per-weight
    vector) goes into the history."""

    def step(self, pop, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...

    def tensors(self) -> dict[str, torch.Tensor]: ...

    def meta(self) -> dict: ...

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None: ...


def strategy(name: str) -> type:
    """The strategy class registered as ``name`` (``ga``, ``openai``, ...)."""
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(f".{module}", __name__), cls)
