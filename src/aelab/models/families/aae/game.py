"""The adversarial autoencoder's game (Makhzani et al. 2016, section 2):
a discriminator on the latent space tells draws of the prior p(z) = N(0, I)
("positive samples") from the encoder's codes q(z) ("negative samples");
the autoencoder minimizes its reconstruction error plus
``adversarial_weight`` times the generator loss of its codes, so the
encoder, the GAN's generator here, learns to fool the discriminator and
q(z) is matched to p(z).

The paper alternates a reconstruction phase and a regularization phase
with their own SGD optimizers; here the reconstruction and the encoder's
adversarial loss are one step of the autoencoder's optimizer, after each
discriminator step (as Pythae's ``Adversarial_AE``), so the trainer's
loop, losses (``non_saturating``, ``hinge``, ``wgan-gp`` with the penalty
between prior draws and codes) and checkpoints serve it unchanged.
"""
from __future__ import annotations

import torch

from ....training.methods.adversarial.games import Game, without
from ....training.objectives import summed_loss


class CodeGame(Game):
    def __init__(self, train, reconstruction: str, weight: float):
        super().__init__(train)
        self.recon, self.weight = summed_loss(reconstruction), weight

    def generator_parameters(self, model):
        return without(model, "discriminator")  # the encoder and the decoder

    def discriminator_backward(self, model, real, cond):
        with torch.no_grad():
            codes = model.encode(real)
        prior = torch.randn_like(codes)
        prior_logit, code_logit = model.critic(prior), model.critic(codes)
        loss = self.penalized(self.loss.discriminator(prior_logit, code_logit), model.critic, prior, codes)
        return self.critic_backward(loss, prior_logit, code_logit)

    def generator_backward(self, model, real, cond):
        out = model(real)
        recon = self.recon(out["x_hat"], real)
        adversarial = self.loss.generator(model.critic(out["z"]))
        loss = recon + self.weight * adversarial
        loss.backward()
        return loss.detach(), {"recon": recon.detach(), "adversarial": adversarial.detach()}
