"""OpenAI-ES (Salimans et al. 2017, "Evolution strategies as a scalable
alternative to reinforcement learning")."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...updates import adam
from .. import operators as op
from ..population import Population, check_finite


class OpenAIES:
    """OpenAI-ES (Salimans et al. 2017): antithetic Gaussian perturbations of
    one mean vector, centered-rank utilities, Adam on the gradient estimate."""

    def __init__(self, spec, pop: Population, theta0: torch.Tensor, gen: torch.Generator):
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
        self.t += 1
        delta, self.m, self.v = adam(-grad, self.m, self.v, self.t, self.spec.lr)
        self.theta = self.theta - delta
        return self.theta, fit

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"theta": self.theta, "m": self.m, "v": self.v}

    def meta(self) -> dict:
        return {"t": self.t}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.theta, self.m, self.v, self.t = tensors["theta"], tensors["m"], tensors["v"], meta["t"]
