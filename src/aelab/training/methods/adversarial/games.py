"""The games the adversarial trainer plays.  The trainer owns the loop (the
seeded permutation, two Adam optimizers, ``n_critic``, the generator's moving
average, the mode-collapse watch, checkpoints); a :class:`Game`, which a
model family hands it (``Family.game``), says which parameters are the
generator's and which the discriminator's, and computes the gradients of one
discriminator step and one generator step on a batch of real inputs.

:class:`ImageGame` is the GAN's (Goodfellow et al. 2014): the discriminator
tells training images from decoded prior draws.  The autoencoder families
that train adversarially (the adversarial autoencoder, FactorVAE, VAE-GAN)
bring games of their own, in their folders.
"""
from __future__ import annotations

from typing import Iterable

import torch

from .losses import LOSSES, gradient_penalty, shown

Parts = dict[str, torch.Tensor]


class Game:
    """One discriminator step and one generator step, as gradients.  Each
    ``*_backward`` runs ``backward()`` on what that player minimizes (the
    trainer has zeroed the gradients and steps the player's optimizer after)
    and returns the loss, detached.  The discriminator's also returns its
    mean output on real and on fake inputs (for the history); the
    generator's a dict of named parts of its loss (averaged per epoch into
    history.csv beside ``g_loss``)."""

    # The generator steps before the discriminator on each batch it steps on
    # (the discriminator may then reuse what the generator's forward computed).
    generator_first = False

    def __init__(self, train):
        self.loss = LOSSES[train.loss]
        self.gp_weight = train.gp_weight

    def generator_parameters(self, model) -> list[torch.nn.Parameter]:
        return list(model.generator.parameters())

    def discriminator_parameters(self, model) -> list[torch.nn.Parameter]:
        return list(model.discriminator.parameters())

    def discriminator_backward(self, model, real: torch.Tensor, cond: tuple
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def generator_backward(self, model, real: torch.Tensor, cond: tuple) -> tuple[torch.Tensor, Parts]:
        raise NotImplementedError

    def penalized(self, loss: torch.Tensor, critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """``loss`` plus the gradient penalty between ``real`` and ``fake``
        when the loss is ``wgan-gp`` (Gulrajani et al. 2017, eq. 3)."""
        if self.loss.penalized and self.gp_weight:
            return loss + self.gp_weight * gradient_penalty(critic, real, fake)
        return loss

    def critic_backward(self, loss: torch.Tensor, real_logit: torch.Tensor, fake_logit: torch.Tensor):
        """Backpropagate the discriminator's ``loss``; what it returns."""
        loss.backward()
        return (loss.detach(), *shown(self.loss, real_logit, fake_logit))


def without(model: torch.nn.Module, prefix: str) -> list[torch.nn.Parameter]:
    """Every parameter of ``model`` outside its submodule ``prefix``."""
    return [p for name, p in model.named_parameters() if not name.startswith(prefix + ".")]


def parameters_of(*modules: torch.nn.Module) -> Iterable[torch.nn.Parameter]:
    return [p for m in modules for p in m.parameters()]


class ImageGame(Game):
    """The GAN's game (Goodfellow et al. 2014, Algorithm 1): D tells
    training images from ``decode(z)``, z ~ N(0, I) (for a conditional GAN
    drawn as the real images' labels); G makes D call its images real."""

    def discriminator_backward(self, model, real, cond):
        with torch.no_grad():
            fake = model.decode(torch.randn(len(real), model.latent_dim, device=real.device), *cond)
        real_logit, fake_logit = model.critic(real, *cond), model.critic(fake, *cond)
        loss = self.penalized(self.loss.discriminator(real_logit, fake_logit),
                              lambda images: model.critic(images, *cond), real, fake)
        return self.critic_backward(loss, real_logit, fake_logit)

    def generator_backward(self, model, real, cond):
        fake = model.decode(torch.randn(len(real), model.latent_dim, device=real.device), *cond)
        loss = self.loss.generator(model.critic(fake, *cond))
        loss.backward()
        return loss.detach(), {}
