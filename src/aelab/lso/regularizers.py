"""Latent regularizers: keep LSO where the decoder makes digits.

The LSO paper saw its optimized codes leave the region the decoder was
trained on (noisy, unrecognizable outputs) and suggested regularizing the
latent space.  Three ways, combinable:

* :class:`PriorPenalty` adds ``weight * ||u||^2 / (2 d)`` to each row's
  objective, ``u`` the code in the start Gaussian's standard-normal
  coordinates (the negative log prior, scaled per dimension).
* :class:`Box` clamps every value into the ``[q, 100 - q]`` percentiles of
  the training codes after each step.
* :class:`Shell` projects each code onto the typical shell of the Gaussian:
  a d-dimensional standard normal lies almost surely near radius sqrt(d),
  so ``u <- u * sqrt(d) / ||u||``.

A regularizer has ``penalty(z) -> (B,)`` (added to the objective, never to
the success test) and ``project(z) -> z`` (applied after every step).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .starts import Gaussian


class Regularizer:
    def penalty(self, z: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B,)
        return z.new_zeros(len(z))

    def project(self, z: torch.Tensor) -> torch.Tensor:
        return z


class PriorPenalty(Regularizer):
    def __init__(self, gaussian: Gaussian, weight: float = 1e-3):
        self.gaussian, self.weight = gaussian, float(weight)

    def penalty(self, z):
        u = self.gaussian.whiten(z)
        return self.weight * 0.5 * u.pow(2).mean(1)


class Box(Regularizer):
    def __init__(self, low: torch.Tensor, high: torch.Tensor):
        self.low, self.high = low, high

    @classmethod
    def from_codes(cls, codes, percentile: float = 1.0) -> "Box":
        z = np.asarray(codes, dtype=np.float64)
        lo, hi = np.percentile(z, [percentile, 100.0 - percentile], axis=0)
        return cls(torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32))

    def project(self, z):
        return torch.maximum(torch.minimum(z, self.high), self.low)


class Shell(Regularizer):
    def __init__(self, gaussian: Gaussian):
        self.gaussian = gaussian

    def project(self, z):
        u = self.gaussian.whiten(z)
        radius = math.sqrt(u.shape[1])
        return self.gaussian.unwhiten(u * (radius / u.norm(dim=1, keepdim=True).clamp_min(1e-12)))


class Chain(Regularizer):
    """Several regularizers: penalties add up, projections apply in order."""

    def __init__(self, parts: list[Regularizer]):
        self.parts = list(parts)

    def penalty(self, z):
        total = z.new_zeros(len(z))
        for p in self.parts:
            total = total + p.penalty(z)
        return total

    def project(self, z):
        for p in self.parts:
            z = p.project(z)
        return z
