"""SNES (Schaul, Glasmachers & Schmidhuber 2011, "High dimensions and heavy
tails for natural evolution strategies")."""
from __future__ import annotations

import math

import torch

from .. import operators as op
from ..population import Population, check_finite


class SNES:
    """Separable natural evolution strategy (Schaul et al. 2011): a mean and a
    per-weight step size, both moved along natural-gradient estimates."""

    def __init__(self, spec, pop: Population, theta0: torch.Tensor, gen: torch.Generator):
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
