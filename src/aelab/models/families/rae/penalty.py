"""The RAE's regularizers (Ghosh, Sajjadi, Vergari, Black & Schoelkopf 2020,
"From Variational to Deterministic Autoencoders", Sec. 3 and eq. 11):

    L_z   = 1/2 ||z||_2^2                       (the code's size, bounds the latent space)
    L_L2  = ||theta||_2^2                       (RAE-L2: the decoder's parameters)
    L_GP  = ||grad_z D_theta(z)||_2^2, z = E(x) (RAE-GP: the decoder's gradient at the code)

For an image-valued decoder D: R^d -> R^P the gradient is its Jacobian J
(P x d), and L_GP is its squared Frobenius norm sum_{p,j} (dD_p/dz_j)^2 --
how fast the decoded image moves when the code does, which is what the
noise of a VAE's reparameterization smooths implicitly (the paper's Sec. 2).
Pythae takes instead ||J^T 1||^2 (the gradient of the summed pixels, where
pixels can cancel) and the authors' code the gradient of ||D(z)||^2; this is
the equation as written.  J has only d columns, so it is taken exactly by d
Jacobian-vector products J e_j, all in one pass over the batch repeated d
times, each by the double-backward trick (J v = d/du <J^T u, v>).  With a
batch-normalized decoder in training mode the d copies share the batch's
statistics, so the rows are the same as the plain batch's.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch

Tensor = torch.Tensor


def code_penalty(z: Tensor) -> Tensor:
    """L_z per example: 1/2 ||z||^2, shape (B,)."""
    return 0.5 * z.pow(2).sum(1)


def decoder_l2(parameters: Iterable[Tensor]) -> Tensor:
    """L_L2: the sum of the squares of every decoder parameter (weights and
    biases: theta of the paper, the parameters Pythae's decoder weight decay
    covers), given as ``decoder.parameters()`` (or, fused, one member's slices)."""
    return sum(p.pow(2).sum() for p in parameters)


def decoder_jacobian_norm_sq(decode: Callable[[Tensor], Tensor], z: Tensor,
                             create_graph: bool | None = None) -> tuple[Tensor, Tensor]:
    """(||J_D(z_b)||_F^2 for each code b (B,), the decoded images D(z) (B, ...)).

    ``create_graph`` defaults to whether gradients are on where it is
    called: in training the penalty is differentiable in the decoder's
    weights and, through z, in the encoder's.  The gradients it takes run
    even under ``torch.no_grad`` (evaluation)."""
    create_graph = torch.is_grad_enabled() if create_graph is None else create_graph
    with torch.enable_grad():
        if not z.requires_grad:
            z = z.detach().requires_grad_(True)
        n, d = z.shape
        rows = z.repeat(d, 1)                                    # row j*n + b is z_b
        images = decode(rows)
        flat = images.flatten(1)
        u = torch.zeros_like(flat, requires_grad=True)
        (jt_u,) = torch.autograd.grad(flat, rows, grad_outputs=u, create_graph=True)      # J^T u
        tangents = torch.eye(d, dtype=z.dtype, device=z.device).repeat_interleave(n, dim=0)  # row j*n + b is e_j
        (jv,) = torch.autograd.grad(jt_u, u, grad_outputs=tangents, create_graph=create_graph)  # J e_j
        norm_sq = jv.pow(2).sum(1).view(d, n).sum(0)
    x_hat = images[:n]
    return (norm_sq, x_hat) if create_graph else (norm_sq.detach(), x_hat.detach())
