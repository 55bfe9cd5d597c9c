"""PGPE: policy gradients with parameter-based exploration (Sehnke et al.
2010, "Parameter-exploring policy gradients"), with symmetric sampling and
the ClipUp optimizer on the centre (Toklu et al. 2020, "ClipUp: a simple and
powerful optimizer for distribution-based policy evolution") -- the setup
EvoTorch's PGPE uses by default (symmetric, centered ranking, ClipUp).

A Gaussian search distribution with centre ``mu`` and a per-weight standard
deviation ``sigma``.  Each generation draws ``population / 2`` perturbations
``eps ~ N(0, sigma^2)`` and scores both ``mu + eps`` and ``mu - eps``;
fitness is turned into centered ranks (best highest).  With utilities
``u+`` / ``u-`` of a pair and ``b`` their mean over everybody (the baseline):

* grad_mu    = mean_k  eps_k (u+_k - u-_k) / 2
* grad_sigma = mean_k ((u+_k + u-_k) / 2 - b) (eps_k^2 - sigma^2) / sigma

The centre follows ClipUp: the gradient is normalised to unit length and
scaled by ``train.lr`` (the step size), accumulated with momentum 0.9 into a
velocity whose length is clipped to ``2 * lr`` (the ClipUp paper's advice:
step size = half the maximum speed).  The standard deviation takes a plain
step of ``STDEV_LR * grad_sigma``, limited to a relative change of
``STDEV_MAX_CHANGE`` per generation (0.2, EvoTorch's default).  Everything is
tensors on the population's device, so a checkpoint resumes bit-exactly.
"""
from __future__ import annotations

import torch

from ...errors import ConfigError
from .. import operators as op
from ..population import Population, check_finite
from ...updates import CLIPUP_MOMENTUM as MOMENTUM, clipup  # noqa: F401 (MOMENTUM: its documented value)

Tensor = torch.Tensor
STDEV_LR = 0.1          # stdev learning rate (the value EvoTorch's examples use)
STDEV_MAX_CHANGE = 0.2  # at most 20% change of each sigma per generation


class PGPE:
    """Symmetric-sampling PGPE with ClipUp; ``train.sigma`` is the initial
    standard deviation, ``train.lr`` ClipUp's step size."""

    def __init__(self, spec, pop: Population, theta0: Tensor, gen: torch.Generator):
        if spec.population % 2:
            raise ConfigError(f"train.population: PGPE samples symmetric pairs and needs an even "
                              f"population, got {spec.population}")
        self.spec, self.mu = spec, theta0.clone()
        self.sigma = torch.full_like(theta0, spec.sigma)
        self.velocity = torch.zeros_like(theta0)

    def step(self, pop: Population, x: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        half = self.spec.population // 2
        eps = torch.randn(half, pop.size, generator=gen).to(self.mu.device) * self.sigma
        fit = check_finite(pop.fitness(torch.cat([self.mu + eps, self.mu - eps]), x, self.spec.fitness))
        self.update(eps, op.centered_ranks(fit))
        return self.mu, fit

    def update(self, eps: Tensor, u: Tensor) -> None:
        """Move ``mu`` (ClipUp) and ``sigma`` from perturbations ``eps`` and the
        utilities ``u`` of ``[mu + eps, mu - eps]`` (higher is better)."""
        half = len(eps)
        u_plus, u_minus = u[:half], u[half:]
        grad_mu = ((u_plus - u_minus) / 2) @ eps / half
        grad_sigma = ((u_plus + u_minus) / 2 - u.mean()) @ ((eps * eps - self.sigma ** 2) / self.sigma) / half
        self.velocity = clipup(self.velocity, grad_mu, self.spec.lr, 2 * self.spec.lr)
        self.mu = self.mu + self.velocity
        new = self.sigma + STDEV_LR * grad_sigma
        self.sigma = torch.minimum(torch.maximum(new, self.sigma * (1 - STDEV_MAX_CHANGE)),
                                   self.sigma * (1 + STDEV_MAX_CHANGE))

    def tensors(self) -> dict[str, Tensor]:
        return {"mu": self.mu, "sigma": self.sigma, "velocity": self.velocity}

    def meta(self) -> dict:
        return {}

    def load(self, tensors: dict[str, Tensor], meta: dict) -> None:
        self.mu, self.sigma, self.velocity = tensors["mu"], tensors["sigma"], tensors["velocity"]
