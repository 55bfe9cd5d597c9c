"""Separable CMA-ES (Ros & Hansen 2008, "A simple modification in CMA-ES
achieving linear time and space complexity"): CMA-ES whose covariance matrix
is kept diagonal, so sampling and updating cost O(n) per individual -- the
only CMA-ES that fits a network's thousands of weights.

Notation and default constants are Hansen's ("The CMA evolution strategy: a
tutorial", 2016): mean ``m``, global step size ``sigma``, diagonal covariance
``C``, evolution paths ``p_sigma`` and ``p_c``, recombination weights ``w``
of the best ``mu = lambda // 2``.  The separable variant multiplies the
covariance learning rates ``c_1`` and ``c_mu`` by ``(n + 2) / 3``.

The population is scored by our batched :class:`Population` (no library owns
the evaluation); the update is a handful of vector operations on the
population's device with no host synchronisation, and the whole state is
tensors, so a checkpoint resumes bit-exactly.
"""
from __future__ import annotations

import math

import torch

from ...errors import ConfigError
from ..population import Population, check_finite

Tensor = torch.Tensor


def recombination_weights(lam: int) -> Tensor:
    """Positive log-decreasing weights of the best ``mu = lam // 2``, summing to 1."""
    mu = lam // 2
    w = math.log(mu + 0.5) - torch.log(torch.arange(1, mu + 1, dtype=torch.float64))
    return w / w.sum()


class SepCMAConstants:
    """The strategy parameters of sep-CMA-ES for dimension ``n`` and population ``lam``."""

    def __init__(self, n: int, lam: int):
        w = recombination_weights(lam)
        self.mu, self.weights = len(w), w
        self.mueff = float(1.0 / (w * w).sum())
        mueff = self.mueff
        self.c_sigma = (mueff + 2) / (n + mueff + 5)
        self.d_sigma = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + self.c_sigma
        self.c_c = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
        c_1 = 2 / ((n + 1.3) ** 2 + mueff)
        c_mu = min(1 - c_1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
        self.c_1 = min(1.0, c_1 * (n + 2) / 3)                 # Ros & Hansen: rates x (n + 2) / 3
        self.c_mu = min(1 - self.c_1, c_mu * (n + 2) / 3)
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))  # E||N(0, I)||


class SepCMA:
    """sep-CMA-ES over the flat weight vector; ``train.sigma`` is the initial
    step size, ``train.population`` is lambda (at least 4, so that mu >= 2)."""

    def __init__(self, spec, pop: Population, theta0: Tensor, gen: torch.Generator):
        if spec.population < 4:
            raise ConfigError(f"train.population: sep-CMA-ES recombines the best half and needs at "
                              f"least 4 individuals, got {spec.population}")
        self.spec, self.k = spec, SepCMAConstants(pop.size, spec.population)
        dev, dt = theta0.device, theta0.dtype
        self.w = self.k.weights.to(device=dev, dtype=dt)
        self.m = theta0.clone()
        self.sigma = torch.tensor(spec.sigma, dtype=dt, device=dev)
        self.C = torch.ones_like(theta0)
        self.p_sigma, self.p_c = torch.zeros_like(theta0), torch.zeros_like(theta0)
        self.g = torch.zeros((), dtype=torch.int64, device=dev)  # generations done (for h_sigma)

    def step(self, pop: Population, x: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """Sample lambda points, score them, and move m, sigma, C and the paths."""
        z = torch.randn(self.spec.population, pop.size, generator=gen).to(self.m.device)
        y = z * self.C.sqrt()                                  # y ~ N(0, C)
        fit = check_finite(pop.fitness(self.m + self.sigma * y, x, self.spec.fitness))
        self.update(z, y, fit)
        return self.m, fit

    def update(self, z: Tensor, y: Tensor, fit: Tensor) -> None:
        """The sep-CMA-ES update from samples ``z`` (``y = sqrt(C) z``) and their
        fitness (lower is better)."""
        k, best = self.k, fit.argsort()[: self.k.mu]
        y_w, z_w = self.w @ y[best], self.w @ z[best]
        self.m = self.m + self.sigma * y_w
        self.p_sigma = (1 - k.c_sigma) * self.p_sigma + math.sqrt(k.c_sigma * (2 - k.c_sigma) * k.mueff) * z_w
        self.g = self.g + 1
        norm = self.p_sigma.norm()
        self.sigma = self.sigma * torch.exp((k.c_sigma / k.d_sigma) * (norm / k.chi_n - 1))
        h_sigma = (norm / torch.sqrt(1 - (1 - k.c_sigma) ** (2 * self.g)) <
                   (1.4 + 2 / (len(self.m) + 1)) * k.chi_n).to(self.m.dtype)
        self.p_c = (1 - k.c_c) * self.p_c + h_sigma * math.sqrt(k.c_c * (2 - k.c_c) * k.mueff) * y_w
        decay = 1 - k.c_1 - k.c_mu + (1 - h_sigma) * k.c_1 * k.c_c * (2 - k.c_c)
        self.C = decay * self.C + k.c_1 * self.p_c.square() + k.c_mu * (self.w @ y[best].square())

    def tensors(self) -> dict[str, Tensor]:
        return {"m": self.m, "sigma": self.sigma, "C": self.C, "p_sigma": self.p_sigma, "p_c": self.p_c,
                "g": self.g}

    def meta(self) -> dict:
        return {}

    def load(self, tensors: dict[str, Tensor], meta: dict) -> None:
        self.m, self.sigma, self.C = tensors["m"], tensors["sigma"], tensors["C"]
        self.p_sigma, self.p_c, self.g = tensors["p_sigma"], tensors["p_c"], tensors["g"]
