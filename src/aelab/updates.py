"""Pure update rules on flat vectors, shared by the evolution strategies
(:mod:`aelab.training.strategies`) and latent-space optimization
(:mod:`aelab.lso.optimizers`).  Each takes the state it needs and returns
the new state; nothing here holds state or draws random numbers.

* :func:`adam` -- Kingma & Ba 2015, Algorithm 1 (bias-corrected moments;
  ``t`` may be a per-row tensor of step counts);
* :func:`clipup` -- Toklu et al. 2020: a normalised gradient step into a
  momentum velocity whose length is clipped to ``max_speed``.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor
CLIPUP_MOMENTUM = 0.9  # ClipUp's recommended momentum


def adam(grad: Tensor, m: Tensor, v: Tensor, t, lr: float, beta1: float = 0.9, beta2: float = 0.999,
         eps: float = 1e-8) -> tuple[Tensor, Tensor, Tensor]:
    """One Adam step for ``grad`` at step count ``t`` (1 for the first):
    returns ``(delta, m, v)`` with the new moments; the parameters move by
    ``-delta`` (``theta - delta`` descends)."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return lr * m_hat / (v_hat.sqrt() + eps), m, v


def clipup(velocity: Tensor, grad: Tensor, step: float, max_speed: float,
           momentum: float = CLIPUP_MOMENTUM) -> Tensor:
    """ClipUp's new velocity: ``momentum * v + step * g / |g|``, clipped to ``max_speed``."""
    g = grad / grad.norm().clamp_min(1e-30)
    v = momentum * velocity + step * g
    return v * (max_speed / v.norm().clamp_min(max_speed))  # unchanged when |v| <= max_speed
