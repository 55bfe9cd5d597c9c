"""The VampPrior's density and its single-sample KL (Tomczak & Welling 2018,
"VAE with a VampPrior", eqs. 9 and 10 and Sec. 3):

    p_lambda(z) = 1/K sum_k q_phi(z | u_k)                                 (eq. 9)
    log p(z)    = logsumexp_k log N(z; mu_k, diag sigma_k^2) - log K

with (mu_k, log sigma_k^2) the encoder's outputs at the pseudo-input u_k.
The KL of q(z|x) to a mixture has no closed form, so the ELBO takes it, as
the paper and its code do, at the single reparameterized draw z ~ q(z|x):

    KL ~ log q(z|x) - log p(z)

an unbiased estimate of KL(q(z|x) || p(z)) (per example; it can be
negative for one draw, its expectation cannot).
"""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor
LOG_2PI = math.log(2 * math.pi)


def log_normal_diag(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def vamp_log_prior(z: Tensor, prior_mu: Tensor, prior_logvar: Tensor) -> Tensor:
    """log p(z) of eq. 9 for codes ``z`` (B, d), components (K, d): shape (B,)."""
    per_component = log_normal_diag(z.unsqueeze(1), prior_mu.unsqueeze(0), prior_logvar.unsqueeze(0))  # (B, K)
    return torch.logsumexp(per_component, dim=1) - math.log(len(prior_mu))


def single_sample_kl(z: Tensor, mu: Tensor, logvar: Tensor, prior_mu: Tensor, prior_logvar: Tensor) -> Tensor:
    """log q(z|x) - log p(z) at the draw ``z`` of q(z|x) = N(mu, diag exp(logvar)): (B,)."""
    return log_normal_diag(z, mu, logvar) - vamp_log_prior(z, prior_mu, prior_logvar)


def draw_components(prior_mu: Tensor, prior_logvar: Tensor, n: int,
                    generator: torch.Generator | None = None) -> Tensor:
    """``n`` draws of the mixture: a component k uniformly (the weights are
    1/K), then z = mu_k + sigma_k * eps.  The generator draws on the CPU
    (k first, then eps), so a seed gives the same codes on every device."""
    k = torch.randint(len(prior_mu), (n,), generator=generator)
    eps = torch.randn(n, prior_mu.shape[1], generator=generator)
    k, eps = k.to(prior_mu.device), eps.to(prior_mu.device, prior_mu.dtype)
    return prior_mu[k] + torch.exp(0.5 * prior_logvar[k]) * eps
