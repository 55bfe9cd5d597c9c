"""The VAE-GAN's game (Larsen, Sønderby, Larochelle & Winther 2016,
Algorithm 1).  With x~ = Dec(z), z ~ q(z|x), and x_p = Dec(z_p),
z_p ~ N(0, I):

    L_prior = KL(q(z|x) || p(z))                                    (eq. 4)
    L_llike = -E_q[log p(Dis_l(x) | z)]
            = 1/2 ||Dis_l(x~) - Dis_l(x)||^2 (+ const)             (eq. 8-9)
    L_GAN   = log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p))     (eq. 7)

where Dis_l is the discriminator's l-th layer (``feature_layer``), a
Gaussian observation model in feature space with identity covariance.  The
three players update with their own gradients (Algorithm 1):

    encoder:       L_prior + L_llike
    decoder:       gamma L_llike - L_GAN
    discriminator: -L_GAN  (maximizes L_GAN)

The encoder and decoder are one optimizer (the trainer's generator Adam)
whose parameters get their two gradients from separate backward passes.
The discriminator tells real images from both kinds of fakes; its loss is
the trainer's: with ``non_saturating`` it is the paper's cross-entropy
(-L_GAN) and the decoder's GAN term the non-saturating -log Dis(x~) -
log Dis(x_p); ``hinge`` and ``wgan-gp`` put their own terms in the same
places (the penalty between real images and prior samples).
"""
from __future__ import annotations

import torch

from ....training.methods.adversarial.games import Game, parameters_of
from ...autoencoder import kld


def feature_distance(model, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L_llike (eq. 8-9): 1/2 ||Dis_l(x~) - Dis_l(x)||^2 summed over the
    features, averaged over the batch."""
    return 0.5 * (model.features(fake) - model.features(real)).pow(2).sum(1).mean()


class FeatureGame(Game):
    def __init__(self, train, gamma: float):
        super().__init__(train)
        self.gamma = gamma

    def generator_parameters(self, model):
        return self.encoder_parameters(model) + list(model.decoder.parameters())

    @staticmethod
    def encoder_parameters(model):
        return list(parameters_of(model.body, model.to_mu, model.to_logvar))

    def discriminator_backward(self, model, real, cond):
        with torch.no_grad():
            recon = model.decode(model.reparameterize(*model.encode(real)))
            prior = model.decode(torch.randn(len(real), model.latent_dim, device=real.device))
        real_logit = model.critic(real)
        loss = self.loss.real(real_logit) + self.loss.fake(model.critic(recon)) + self.loss.fake(
            prior_logit := model.critic(prior))
        loss = self.penalized(loss, model.critic, real, prior)
        return self.critic_backward(loss, real_logit, prior_logit)

    def generator_backward(self, model, real, cond):
        mu, logvar = model.encode(real)
        recon = model.decode(model.reparameterize(mu, logvar))
        prior = model.decode(torch.randn(len(real), model.latent_dim, device=real.device))
        kl, llike = kld(mu, logvar).mean(), feature_distance(model, recon, real)
        gan = self.loss.generator(model.critic(recon)) + self.loss.generator(model.critic(prior))
        encoder, decoder = self.encoder_parameters(model), list(model.decoder.parameters())
        enc_grads = torch.autograd.grad(kl + llike, encoder, retain_graph=True)
        dec_grads = torch.autograd.grad(self.gamma * llike + gan, decoder)
        for p, g in zip(encoder + decoder, enc_grads + dec_grads):
            p.grad = g
        loss = kl + llike + gan
        return loss.detach(), {"kl": kl.detach(), "feature_recon": llike.detach(), "adversarial": gan.detach()}
