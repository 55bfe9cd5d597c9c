"""The contractive penalty: the squared Frobenius norm of the encoder's
Jacobian, per example (Rifai, Vincent, Muller, Glorot & Bengio 2011,
"Contractive Auto-Encoders: Explicit Invariance During Feature Extraction",
eq. 1):

    ||J_f(x)||_F^2 = sum_ij (d h_j(x) / d x_i)^2

The paper writes it out for one sigmoid layer h = s(Wx + b), where it is
sum_j (h_j (1 - h_j))^2 sum_i W_ji^2; an encoder here is any stack of the
layer vocabulary, so the norm is taken exactly by autograd instead: row j of
J is the input-gradient of code unit j, and since each code depends on its
own input only (the spec refuses batch normalization, which breaks that in
training), one backward pass of sum_b h_j(x_b) gives row j for every
example of the batch at once -- s passes for an s-unit code.  With
``create_graph`` the result is differentiable in the weights (training).
"""
from __future__ import annotations

from typing import Callable

import torch

Tensor = torch.Tensor


def jacobian_norm_sq(encode: Callable[[Tensor], Tensor], x: Tensor,
                     create_graph: bool | None = None) -> tuple[Tensor, Tensor]:
    """(||J_f(x_b)||_F^2 for each example b (B,), the codes f(x) (B, s)).
    ``create_graph`` defaults to whether gradients are on where it is called;
    the gradients it takes run even under ``torch.no_grad`` (evaluation)."""
    create_graph = torch.is_grad_enabled() if create_graph is None else create_graph
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        z = encode(x).flatten(1)
        norm_sq = x.new_zeros(len(x))
        for j in range(z.shape[1]):
            (row,) = torch.autograd.grad(z[:, j].sum(), x, create_graph=create_graph, retain_graph=True)
            norm_sq = norm_sq + row.flatten(1).pow(2).sum(1)
    return (norm_sq, z) if create_graph else (norm_sq.detach(), z.detach())
