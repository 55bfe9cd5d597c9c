"""The k-sample importance weighted bound of Burda, Grosse & Salakhutdinov
(2016, eq. 8) on the VAE's module:

    L_k(x) = E_{z_1..z_k ~ q(z|x)} [ log 1/k sum_i w_i ],
    w_i = p(x, z_i) / q(z_i|x) = p(x|z_i) p(z_i) / q(z_i|x)

log p(x|z) is minus the reconstruction loss summed over the image's
pixels, as in the VAE's ELBO here (the Bernoulli log-likelihood for
``bce``; for ``mse``/``mae`` a log-likelihood up to a scale and a
constant).  L_1 is the ELBO; L_k rises with k towards log p(x) (Theorem 1).
"""
from __future__ import annotations

import math

import torch

from ..tcvae.estimators import LOG_2PI, log_standard_normal


def log_weights(model, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor,
                fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(log w, log p(x|z)), each (k, B), for the codes z_i = mu + sigma * eps_i
    of ``eps`` (k, B, D), (mu, logvar) = the encoding of ``x``; ``fn(x_hat, x)``
    is the elementwise reconstruction loss.  log q(z_i|x) is written with eps
    (z_i - mu = sigma eps_i)."""
    z = codes(mu, logvar, eps)
    return weights_of(x, model.decode(z.flatten(0, 1)), z, logvar, eps, fn)


def codes(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z_i = mu + sigma * eps_i, (k, B, D)."""
    return mu + torch.exp(0.5 * logvar) * eps


def weights_of(x, x_hat, z, logvar, eps, fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(log w, log p(x|z)) of :func:`log_weights` from the decoded codes
    ``x_hat`` (k B, ...) -- the part after the decoder (fused training
    decodes every member's codes at once, then runs this per member)."""
    k = len(eps)
    log_px = -fn(x_hat, x.repeat(k, *([1] * (x.dim() - 1)))).flatten(1).sum(1).view(k, -1)
    log_pz = log_standard_normal(z).sum(-1)
    log_qz = (-0.5 * (LOG_2PI + logvar + eps ** 2)).sum(-1)
    return log_px + log_pz - log_qz, log_px


def bound(log_w: torch.Tensor) -> torch.Tensor:
    """L_k per image (B,): log 1/k sum_i w_i = logsumexp_i log w_i - log k.
    Its gradient is eq. 14, sum_i w~_i grad log w_i with the normalized
    weights w~_i = w_i / sum_j w_j (autograd of the logsumexp is exactly that)."""
    return torch.logsumexp(log_w, 0) - math.log(len(log_w))


@torch.no_grad()
def split_bound(model, x, k: int, fn, device, seed: int, images: int = 1024) -> float:
    """Mean L_k over the images of ``x`` (numpy), in eval mode, with the
    k draws per image from a generator seeded ``seed`` (repeatable)."""
    model.eval()
    gen, total, step = torch.Generator().manual_seed(seed), 0.0, max(1, images // k)
    for i in range(0, len(x), step):
        xb = torch.as_tensor(x[i:i + step], device=device)
        mu, logvar = model.encode(xb)
        eps = torch.randn((k, *mu.shape), generator=gen).to(device)
        total += float(bound(log_weights(model, xb, mu, logvar, eps, fn)[0]).double().sum())
    return total / len(x)
