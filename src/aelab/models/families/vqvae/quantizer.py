"""The vector quantiser of the VQ-VAE (van den Oord, Vinyals & Kavukcuoglu
2017, "Neural Discrete Representation Learning", sec. 3.1 and Appendix A.1).

A codebook e_1..e_K of D-dimensional vectors; a code vector z_e is replaced
by its nearest neighbour (eq. 1-2):

    k = argmin_j ||z_e - e_j||^2,   z_q = e_k

with ||z||^2 - 2 z.e_j + ||e_j||^2 as the distance (Sonnet's form; ties go
to the lower index, as numpy's argmin).  The codebook is a parameter
learned from eq. 3's codebook term (``ema=False``), or buffers updated by
exponential moving averages (``ema=True``, Appendix A.1, eq. 6-8) as
Sonnet's VectorQuantizerEMA computes them: zero-debiased averages started at
zero (TensorFlow's ``assign_moving_average``), then Laplace smoothing of the
cluster sizes.  After step t, with n_i the batch's vectors assigned to e_i:

    N_i <- gamma N_i + (1 - gamma) n_i               N^(0) = 0
    m_i <- gamma m_i + (1 - gamma) sum_{j -> i} z_e,j  m^(0) = 0
    N^_i = N_i / (1 - gamma^t),  m^_i = m_i / (1 - gamma^t)   (debiased)
    N~_i = (N^_i + eps) / (n + K eps) * n,           n = sum_i N^_i
    e_i  = m^_i / N~_i

so a code no batch has chosen yet moves to the origin (m^_i = 0) and a used
one to the mean of the vectors assigned to it.  The state -- ``embedding``,
``cluster_size`` (N), ``embedding_sum`` (m) and ``steps`` (t) -- is in
buffers, so a checkpoint holds it and a resumed run continues exactly.  The
initial codebook is Sonnet's: uniform in +-sqrt(3 / D) (variance scaling,
fan-in D).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class VectorQuantizer(nn.Module):
    """K codebook vectors of dimension D; :meth:`nearest`, :meth:`lookup`
    and, for the EMA codebook, :meth:`ema_update`."""

    def __init__(self, codebook_size: int, dim: int, ema: bool = False, decay: float = 0.99,
                 epsilon: float = 1e-5):
        super().__init__()
        self.codebook_size, self.dim, self.ema = codebook_size, dim, ema
        self.decay, self.epsilon = decay, epsilon
        limit = math.sqrt(3.0 / dim)
        init = torch.empty(codebook_size, dim).uniform_(-limit, limit)
        if ema:
            self.register_buffer("embedding", init)
            self.register_buffer("cluster_size", torch.zeros(codebook_size))
            self.register_buffer("embedding_sum", torch.zeros(codebook_size, dim))
            self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        else:
            self.embedding = nn.Parameter(init)

    def distances(self, v: torch.Tensor) -> torch.Tensor:
        """||v_n - e_j||^2 for vectors ``v`` (N, D): (N, K)."""
        e = self.embedding.detach()
        return v.pow(2).sum(1, keepdim=True) - 2 * v @ e.t() + e.pow(2).sum(1)

    @torch.no_grad()
    def nearest(self, v: torch.Tensor) -> torch.Tensor:
        """The index of each vector's nearest codebook vector: (...,) for ``v`` (..., D)."""
        flat = v.reshape(-1, self.dim)
        return self.distances(flat).argmin(1).reshape(v.shape[:-1])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The codebook vectors ``indices`` name: (..., D), with the gradient
        to the codebook when it is a parameter."""
        return F.embedding(indices, self.embedding)

    @torch.no_grad()
    def ema_update(self, v: torch.Tensor, indices: torch.Tensor) -> None:
        """One step of the moving averages for the vectors ``v`` (..., D)
        assigned to ``indices`` (...,), then e_i = m^_i / N~_i."""
        flat, idx = v.reshape(-1, self.dim).to(self.embedding.dtype), indices.reshape(-1)
        onehot = F.one_hot(idx, self.codebook_size).to(flat.dtype)  # (N, K)
        g = self.decay
        self.steps.add_(1)
        self.cluster_size.mul_(g).add_(onehot.sum(0), alpha=1 - g)
        self.embedding_sum.mul_(g).add_(onehot.t() @ flat, alpha=1 - g)
        debias = 1.0 - g ** int(self.steps)
        size, total = self.cluster_size / debias, self.embedding_sum / debias
        n = size.sum()
        smoothed = (size + self.epsilon) / (n + self.codebook_size * self.epsilon) * n
        self.embedding.copy_(total / smoothed.unsqueeze(1))

def code_statistics(indices, codebook_size: int) -> dict[str, float]:
    """``codebook_usage``: the fraction of the K codes assigned at least once,
    and ``perplexity``: exp of the entropy of the average assignment,
    exp(-sum_k p_k log p_k), p_k the share of vectors assigned to code k (as
    Sonnet's VectorQuantizer; 1 for one code, K for a uniform use of all)."""
    idx = torch.as_tensor(indices).reshape(-1).long()
    counts = torch.bincount(idx, minlength=codebook_size).double()
    p = counts / counts.sum()
    used = p > 0
    entropy = -(p[used] * p[used].log()).sum()
    return {"codebook_usage": float(used.double().mean()), "perplexity": float(entropy.exp())}
