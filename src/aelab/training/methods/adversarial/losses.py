"""The adversarial losses, shared by every game the adversarial trainer
plays (:mod:`.games`): a discriminator's (critic's) loss is a term on the
logits of real inputs plus a term on those of each kind of fake, and the
generator's a term on the fakes' logits, so a game with two kinds of fakes
(VAE-GAN: prior samples and reconstructions) adds a second fake term.

- ``non_saturating``: Goodfellow et al. 2014, -log D(x) - log(1 - D(G(z)))
  for D and -log D(G(z)) for G (their section 3);
- ``hinge``: Lim & Ye 2017; Miyato et al. 2018;
- ``wgan-gp``: Gulrajani et al. 2017, eq. 3, the critic's part; the
  gradient penalty is added with ``gp_weight``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Term = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Loss:
    """One adversarial loss: the discriminator's terms on real and fake
    logits, the generator's term on fake logits, whether the critic gets
    the gradient penalty, and whether D's outputs read as probabilities
    (sigmoid) for the history."""

    real: Term
    fake: Term
    generator: Term
    penalized: bool = False
    probabilities: bool = False

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.real(real) + self.fake(fake)


LOSSES = {
    "non_saturating": Loss(lambda real: F.softplus(-real).mean(), lambda fake: F.softplus(fake).mean(),
                           lambda fake: F.softplus(-fake).mean(), probabilities=True),
    "hinge": Loss(lambda real: F.relu(1.0 - real).mean(), lambda fake: F.relu(1.0 + fake).mean(),
                  lambda fake: -fake.mean()),
    "wgan-gp": Loss(lambda real: -real.mean(), lambda fake: fake.mean(), lambda fake: -fake.mean(),
                    penalized=True),
}


def discriminator_loss(name: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's (critic's) loss ``name`` on the logits of real and generated inputs."""
    return LOSSES[name].discriminator(real, fake)


def generator_loss(name: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss ``name`` on the logits of its outputs."""
    return LOSSES[name].generator(fake)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al. 2017, eq. 3: E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat
    uniformly between a real and a fake input (images or codes)."""
    eps = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def shown(loss: Loss, real_logit: torch.Tensor, fake_logit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's mean output on real and fake inputs for the history: a
    probability for a sigmoid loss, the critic's raw score otherwise."""
    if loss.probabilities:
        real_logit, fake_logit = torch.sigmoid(real_logit), torch.sigmoid(fake_logit)
    return real_logit.detach().mean(), fake_logit.detach().mean()
