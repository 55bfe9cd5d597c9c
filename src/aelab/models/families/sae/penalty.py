"""The sparsity penalties of a sparse autoencoder, on a batch of codes z (B, s).

``kl_sparsity`` is the penalty of Andrew Ng's CS294A lecture notes "Sparse
autoencoder" (section "Autoencoders and sparsity"):

    rho_hat_j = (1/m) sum_i a_j(x_i)                      mean activation of unit j
    sum_j KL(rho || rho_hat_j)
        = sum_j rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j))

the KL divergence between Bernoulli variables of means rho and rho_hat_j, so
it needs activations in (0, 1); the notes average over the training set, a
minibatch stands in for it here (one estimate per step).  ``l1_sparsity``
is the L1 activity penalty: the batch mean of sum_j |z_j|.
"""
from __future__ import annotations

import torch

EPS = 1e-6  # rho_hat is kept in [EPS, 1 - EPS]: a saturated float32 sigmoid reaches 0 or 1 exactly


def kl_sparsity(z: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_j KL(rho || rho_hat_j), rho_hat_j the mean of column j of ``z``."""
    rho_hat = z.mean(0).clamp(EPS, 1 - EPS)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def l1_sparsity(z: torch.Tensor) -> torch.Tensor:
    """(1/B) sum_i sum_j |z_ij|."""
    return z.abs().flatten(1).sum(1).mean()


def penalty(name: str, z: torch.Tensor, rho: float) -> torch.Tensor:
    """The penalty ``name`` (kl or l1) of the codes ``z``."""
    return kl_sparsity(z, rho) if name == "kl" else l1_sparsity(z)
