"""The estimators of the beta-TCVAE (Chen, Li, Grosse & Duvenaud 2018): the
aggregate posterior q(z) = 1/N sum_n q(z|n) and its marginals q(z_j) at
codes z(n_i) ~ q(z|n_i), from a minibatch (training) or from a whole split
(the test metrics), and the three terms of the KL's decomposition (eq. 2):

    E_p(n)[KL(q(z|n) || p(z))] =  I_q(z; n)                     index-code MI
                               +  KL(q(z) || prod_j q(z_j))      total correlation
                               +  sum_j KL(q(z_j) || p(z_j))     dimension-wise KL

Per code, the terms are log q(z|n) - log q(z), log q(z) - sum_j log q(z_j)
and sum_j log q(z_j) - log p(z): they add up to log q(z|n) - log p(z)
whatever estimate of q(z) is used.
"""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar))


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; 0, 1): the prior p(z_j)."""
    return -0.5 * (LOG_2PI + z ** 2)


def pairwise_log_q(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(M, M, D): entry [i, j, d] = log q(z_d(n_i) | n_j), each code under
    every posterior of the batch."""
    return log_normal(z[:, None, :], mu[None, :, :], logvar[None, :, :])


def mws(pairs: torch.Tensor, dataset_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch-weighted sampling (sec. 4, eq. 5):
    log q(z(n_i)) ~ log 1/(N M) sum_j q(z(n_i) | n_j), the same for each
    marginal q(z_d).  Returns (log q(z_i), sum_d log q(z_id)), each (M,)."""
    c = math.log(dataset_size * pairs.shape[0])
    return torch.logsumexp(pairs.sum(2), 1) - c, (torch.logsumexp(pairs, 1) - c).sum(1)


def mss_log_weights(m: int, dataset_size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(M, M) log weights of minibatch-stratified sampling (appendix C): row i
    gives its own posterior 1/N, one other member (the next, cyclically) the
    stratum's (N - K) / (N K), and the other K - 1 members 1/K, K = M - 1;
    each row sums to 1."""
    k = m - 1
    w = torch.full((m, m), 1.0 / k, dtype=torch.float64)
    idx = torch.arange(m)
    w[idx, (idx + 1) % m] = (dataset_size - k) / (dataset_size * k)
    w[idx, idx] = 1.0 / dataset_size
    return w.log().to(dtype=dtype, device=device)


def mss(pairs: torch.Tensor, dataset_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch-stratified sampling: log q(z(n_i)) ~ log sum_j W_ij q(z(n_i) | n_j)
    with W of :func:`mss_log_weights` (N at least the batch, a batch of one
    falls back to :func:`mws`).  Returns (log q(z_i), sum_d log q(z_id))."""
    m = pairs.shape[0]
    if m < 2:
        return mws(pairs, dataset_size)
    w = mss_log_weights(m, max(dataset_size, m), pairs.dtype, pairs.device)
    return torch.logsumexp(w + pairs.sum(2), 1), torch.logsumexp(w[:, :, None] + pairs, 1).sum(1)


ESTIMATORS = {"mws": mws, "mss": mss}


def minibatch_terms(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                    estimator: str = "mws") -> dict[str, torch.Tensor]:
    """Per-code MI, TC and dimension-wise KL of a minibatch (each (M,)), and
    log q(z|n) - log p(z), the single-sample KL they add up to."""
    log_qz, log_prod = ESTIMATORS[estimator](pairwise_log_q(z, mu, logvar), dataset_size)
    log_qzx = log_normal(z, mu, logvar).sum(1)
    log_pz = log_standard_normal(z).sum(1)
    return {"mi": log_qzx - log_qz, "tc": log_qz - log_prod, "dimwise_kl": log_prod - log_pz,
            "kl_sample": log_qzx - log_pz}


@torch.no_grad()
def split_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                        chunk: int = 256) -> dict[str, float]:
    """Eq. 2 on a whole split of N images, one code z_n ~ q(z|n) each, with
    q(z) = 1/N sum_n q(z|n) summed over every image (as the paper's
    ``elbo_decomposition.py``): the entropies of q(z) and of each q(z_d)
    estimated at the N codes, E[log q(z|n)] and E[log p(z)] in closed form
    for Gaussians, so that MI + TC + dimension-wise KL is the mean analytic
    KL(q(z|n) || p(z)) exactly.  Computed in float64."""
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    n = len(z)
    log_qz, log_qzd = [], []
    for i in range(0, n, chunk):
        pairs = pairwise_log_q(z[i:i + chunk], mu, logvar)          # (chunk, N, D)
        log_qz.append(torch.logsumexp(pairs.sum(2), 1) - math.log(n))
        log_qzd.append((torch.logsumexp(pairs, 1) - math.log(n)).sum(1))
    log_qz, log_prod = torch.cat(log_qz).mean(), torch.cat(log_qzd).mean()
    log_qzx = (-0.5 * (LOG_2PI + 1 + logvar)).sum(1).mean()                 # -entropy of q(z|n)
    log_pz = (-0.5 * (LOG_2PI + mu ** 2 + logvar.exp())).sum(1).mean()      # cross-entropy to N(0, I)
    return {"mi": float(log_qzx - log_qz), "tc": float(log_qz - log_prod), "dimwise_kl": float(log_prod - log_pz)}
