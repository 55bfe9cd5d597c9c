"""Starting points for LSO restarts, each a distribution over ``(d,)`` vectors.

* ``prior``: N(0, I), the prior a VAE was trained towards.
* ``gaussian``: N(mean, cov) fitted to the training codes (an AE has no
  prior; this is the closest thing to one).
* ``encodings``: the codes of random training images.
* ``uniform``: U(low, high) per value (the pixel-space baseline's random
  image).

Every sampler draws from a ``torch.Generator`` so a run is repeatable, and
``sample(n, gen)`` returns ``(n, d)`` float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..densities import Gaussian  # shared with the samplers (aelab.samplers)
from .compose import LSOError

START_KINDS = ("prior", "gaussian", "encodings", "uniform")


@dataclass
class Encodings:
    """Codes of training images, drawn uniformly with replacement."""

    codes: torch.Tensor  # (N, d)

    @property
    def dim(self) -> int:
        return self.codes.shape[1]

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.codes), (n,), generator=gen)
        return self.codes[idx].clone()


@dataclass
class Uniform:
    """U(low, high) independently per value."""

    dim: int
    low: float = 0.0
    high: float = 1.0

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return self.low + (self.high - self.low) * torch.rand(n, self.dim, generator=gen)


@torch.no_grad()
def training_codes(autoencoder: torch.nn.Module, x: np.ndarray, batch: int = 1024,
                   y: np.ndarray | None = None) -> torch.Tensor:
    """Deterministic codes (``embed``: z for an AE, mu for a VAE) of images
    ``x`` (with their labels ``y``, for a conditional model)."""
    from ..evaluation import embed
    return torch.as_tensor(embed(autoencoder, x, "cpu", batch, y=y)).float()


def make_start(name: str, dim: int, codes: torch.Tensor | None = None, value_range=(0.0, 1.0)):
    """The sampler named ``name`` (``--start``) for ``dim``-dimensional vectors."""
    if name == "prior":
        return Gaussian.standard(dim)
    if name == "uniform":
        return Uniform(dim, *value_range)
    if name in ("gaussian", "encodings"):
        if codes is None:
            raise LSOError(f"--start {name}: needs the training codes of an encoder (pixel space and a "
                           f"decoder-only model such as a GAN have none); use --start prior or uniform")
        return Gaussian.fit(codes) if name == "gaussian" else Encodings(codes)
    raise LSOError(f"--start {name}: unknown, expected one of {', '.join(START_KINDS)}")
