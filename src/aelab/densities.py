"""Densities over code vectors, fitted to codes and drawn from with a
``torch.Generator`` (so every draw repeats with its seed).

* :class:`Gaussian`: N(mean, L L^T), the standard normal or fitted to codes
  (LSO's ``prior`` / ``gaussian`` starts and regularizers, the ``prior`` and
  ``gaussian`` samplers);
* :class:`Mixture`: a full-covariance Gaussian mixture fitted by
  scikit-learn's ``GaussianMixture`` (the ``gmm`` sampler; Pythae's GMM
  sampler does the same on a VAE's training codes).

``sample(n, gen)`` returns ``(n, d)`` float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Gaussian:
    """N(mean, L L^T); ``standard(d)`` is the standard normal."""

    mean: torch.Tensor  # (d,)
    chol: torch.Tensor  # (d, d) lower triangular

    @classmethod
    def standard(cls, d: int) -> "Gaussian":
        return cls(torch.zeros(d), torch.eye(d))

    @classmethod
    def fit(cls, codes: np.ndarray | torch.Tensor, jitter: float = 1e-6) -> "Gaussian":
        """The mean and the sample covariance (``numpy.cov``'s, divided by
        N - 1) of ``codes`` (N, d), plus ``jitter`` on the diagonal so a
        degenerate code still has a Cholesky factor."""
        z = torch.as_tensor(np.asarray(codes), dtype=torch.float64)
        cov = torch.atleast_2d(torch.cov(z.T)) + jitter * torch.eye(z.shape[1], dtype=torch.float64)
        return cls(z.mean(0).float(), torch.linalg.cholesky(cov).float())

    @property
    def dim(self) -> int:
        return len(self.mean)

    @property
    def covariance(self) -> torch.Tensor:
        return self.chol @ self.chol.T

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        eps = torch.randn(n, self.dim, generator=gen)  # (n, d)
        return self.mean + eps @ self.chol.T

    def whiten(self, z: torch.Tensor) -> torch.Tensor:
        """``L^-1 (z - mean)``: standard-normal coordinates of ``z``."""
        chol, mean = self.chol.to(z.dtype), self.mean.to(z.dtype)
        return torch.linalg.solve_triangular(chol, (z - mean).T, upper=False).T

    def unwhiten(self, u: torch.Tensor) -> torch.Tensor:
        return self.mean.to(u.dtype) + u @ self.chol.to(u.dtype).T


@dataclass
class Mixture:
    """sum_k w_k N(mean_k, L_k L_k^T), drawn as: a component by its weight,
    then a draw of that component's Gaussian."""

    weights: torch.Tensor  # (K,)
    means: torch.Tensor    # (K, d)
    chols: torch.Tensor    # (K, d, d) lower triangular
    converged: bool = True
    iterations: int = 0

    @classmethod
    def fit(cls, codes: np.ndarray, components: int, seed: int, max_iter: int = 100,
            tol: float = 1e-3) -> "Mixture":
        """scikit-learn's full-covariance ``GaussianMixture`` with ``components``
        components fitted to ``codes`` (N, d), ``random_state=seed``, EM for at
        most ``max_iter`` iterations to ``tol`` (scikit-learn's defaults)."""
        from sklearn.mixture import GaussianMixture
        gmm = GaussianMixture(n_components=components, covariance_type="full", random_state=seed,
                              max_iter=max_iter, tol=tol)
        gmm.fit(np.asarray(codes, dtype=np.float64))
        chols = np.linalg.cholesky(gmm.covariances_)  # reg_covar keeps every covariance positive definite
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)
        return cls(as_t(gmm.weights_), as_t(gmm.means_), as_t(chols), bool(gmm.converged_), int(gmm.n_iter_))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def covariances(self) -> torch.Tensor:
        return self.chols @ self.chols.transpose(1, 2)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=gen)  # (n,) components
        eps = torch.randn(n, self.dim, generator=gen)                            # (n, d)
        return self.means[k] + torch.einsum("nij,nj->ni", self.chols[k], eps)
