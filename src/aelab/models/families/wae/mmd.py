"""The maximum mean discrepancy between a batch of codes and prior draws,
the divergence of WAE-MMD (Tolstikhin, Bousquet, Gelly & Schoelkopf 2018,
"Wasserstein Auto-Encoders", Algorithm 2) and of the MMD-InfoVAE (Zhao,
Song & Ermon 2019, eq. 6 with D = MMD).

For codes z_1..z_n ~ q(z) and prior draws z~_1..z~_n ~ p(z), the unbiased
U-statistic of MMD_k^2 (Algorithm 2; Gretton et al. 2012, eq. 3):

    MMD^2 = 1/(n(n-1)) sum_{l != j} k(z_l, z_j)
          + 1/(n(n-1)) sum_{l != j} k(z~_l, z~_j)
          - 2/n^2      sum_{l, j}   k(z_l, z~_j)

(the cross term over every pair: z_l and z~_j are independent).  Both
kernels are scaled by C = 2 d sigma^2, the paper's choice for a prior
N(0, sigma^2 I) in d dimensions (the expected squared distance of two prior
draws):

    imq:  k(x, y) = C / (C + ||x - y||^2)
    rbf:  k(x, y) = exp(-||x - y||^2 / C)   (= exp(-||x-y||^2 / (2 s^2)), s^2 = d sigma^2)

``scales`` sums the kernel over several multiples of C; :data:`MULTISCALE`
is the sum of the paper's experiments (0.1 .. 10 times C).  One scale
(``(1.0,)``) is the default of :func:`mmd`.  The estimate can be slightly
negative (it is unbiased, not clipped).  A batch of fewer than two codes
has no within-sample pair: its MMD is taken as 0.
"""
from __future__ import annotations

from typing import Sequence

import torch

KERNELS = ("imq", "rbf")
MULTISCALE = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the multiples of C the paper's IMQ sums over


def base_scale(dim: int, prior_scale: float = 1.0) -> float:
    """C = 2 d sigma^2."""
    return 2.0 * dim * prior_scale ** 2


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: str, scale: float,
                  scales: Sequence[float] = (1.0,)) -> torch.Tensor:
    """k(a_i, b_j) for codes a (n, d), b (m, d), summed over ``scales`` * ``scale``: (n, m)."""
    sq = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)  # exact squared distances, no cancellation
    if kernel == "imq":
        return sum(s * scale / (s * scale + sq) for s in scales)
    if kernel == "rbf":
        return sum(torch.exp(-sq / (s * scale)) for s in scales)
    raise ValueError(f"kernel: expected one of {', '.join(KERNELS)}, got {kernel!r}")


def kernel_scales(multiscale: bool) -> tuple[float, ...]:
    """The kernel's scales, as multiples of C: the paper's seven, or C alone."""
    return MULTISCALE if multiscale else (1.0,)


def mmd(q: torch.Tensor, p: torch.Tensor, kernel: str = "imq", prior_scale: float = 1.0,
        scales: Sequence[float] = (1.0,)) -> torch.Tensor:
    """The unbiased estimate of MMD^2 between codes ``q`` (n, d) and prior
    draws ``p`` (n, d) (Algorithm 2), kernel scale C = 2 d ``prior_scale``^2."""
    n, d = q.shape
    if n < 2:
        return q.sum() * 0.0
    c = base_scale(d, prior_scale)
    off = ~torch.eye(n, dtype=torch.bool, device=q.device)
    k_qq = kernel_matrix(q, q, kernel, c, scales)[off].sum() / (n * (n - 1))
    k_pp = kernel_matrix(p, p, kernel, c, scales)[off].sum() / (n * (n - 1))
    k_qp = kernel_matrix(q, p, kernel, c, scales).sum() / (n * len(p))
    return k_qq + k_pp - 2.0 * k_qp


def prior_draws(z: torch.Tensor, prior_scale: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """As many draws of N(0, prior_scale^2 I) as codes ``z`` (n, d), from
    torch's global RNG unless a ``generator`` is given (the gradient trainer
    seeds the global one every epoch, so a resumed run draws the same)."""
    if generator is None:
        return prior_scale * torch.randn(z.shape, dtype=z.dtype, device=z.device)
    return prior_scale * torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
