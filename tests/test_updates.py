"""The pure update rules shared by the evolution strategies and LSO,
against their references: torch.optim.Adam (Kingma & Ba 2015, Algorithm 1)
and ClipUp's definition (Toklu et al. 2020)."""
from __future__ import annotations

import torch

from aelab.updates import CLIPUP_MOMENTUM, adam, clipup


def test_adam_follows_torch_optim_adam_step_by_step():
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(50, generator=gen)
    ref = theta.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    m, v = torch.zeros(50), torch.zeros(50)
    for t in range(1, 30):
        g = torch.randn(50, generator=gen)
        ref.grad = g.clone()
        opt.step()
        delta, m, v = adam(g, m, v, t, 0.05, 0.8, 0.99, 1e-6)
        theta = theta - delta
        torch.testing.assert_close(theta, ref.detach(), rtol=1e-6, atol=1e-7)


def test_adam_takes_a_step_count_per_row():
    """LSO's restarts: each row its own bias correction."""
    g = torch.ones(2, 3)
    t = torch.tensor([[1.0], [5.0]])
    delta, m, v = adam(g, torch.zeros(2, 3), torch.zeros(2, 3), t, 0.1)
    first, _, _ = adam(g[:1], torch.zeros(1, 3), torch.zeros(1, 3), 1, 0.1)
    torch.testing.assert_close(delta[:1], first)
    assert not torch.allclose(delta[0], delta[1])


def test_clipup_normalizes_the_gradient_and_caps_the_speed():
    g = torch.tensor([3.0, 4.0])
    v = clipup(torch.zeros(2), g, step=0.1, max_speed=1.0)
    torch.testing.assert_close(v, torch.tensor([0.06, 0.08]))  # step * g / |g|
    v2 = clipup(v, g, step=0.1, max_speed=1.0)
    torch.testing.assert_close(v2, CLIPUP_MOMENTUM * v + torch.tensor([0.06, 0.08]))
    fast = clipup(torch.tensor([10.0, 0.0]), g, step=0.1, max_speed=1.0)
    torch.testing.assert_close(fast.norm(), torch.tensor(1.0))
