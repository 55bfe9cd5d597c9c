"""``kind: dbvae``: the beta-VAE with a controlled capacity increase
(Burgess et al. 2018, "Understanding disentangling in beta-VAE", eq. 8):

    L(x) = E_q(z|x)[log p(x|z)] - gamma |KL(q(z|x) || p(z)) - C|

on the VAE's module (a Gaussian code, p(z) = N(0, I)).  The loss is -L per
image averaged over the batch (the reconstruction summed over the image's
pixels, the KL in closed form).  ``capacity_of: image`` holds each image's
KL at C (eq. 8 as written, for one x), ``batch`` the batch's mean KL (an
estimate of E_x KL).  The capacity C rises
linearly from 0 to C_max (sec. 4): here a function of the epoch alone (:meth:`.config.DBVAESpec.capacity`), so a run
resumed after a kill continues the ramp where it was.  Training draws z as
the VAE does; validation decodes mu.  It reports the VAE's metrics.
"""
from __future__ import annotations

import torch

from ....training.objectives import Objective, summed_loss
from ...autoencoder import VAE, kld
from ..tcvae.family import build_variational
from ..vae.family import VAEFamily


class DBVAE(VAE):
    """The VAE module (x -> (mu, logvar) -> z -> x_hat, unchanged) under the name ``dbvae``."""

    kind = "dbvae"
    # what fused training stacks (aelab.training.fused.stack.layout): the VAE's parts, under eq. 8
    fused_layout = (("body", "to_mu", "to_logvar", "decoder"), "capacity")


def dbvae_objective(loss: str, gamma: float, capacity, per_image: bool = True) -> Objective:
    """Eq. 8 negated: summed reconstruction + gamma |KL - C(epoch)|, averaged
    over the batch, with KL each image's (``per_image``) or the batch's mean;
    ``capacity(epoch)`` is C in nats."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        out = model(x)
        recon, kl, c = fn(out["x_hat"], x), kld(out["mu"], out["logvar"]), capacity(epoch)
        value = recon + gamma * ((kl - c).abs().mean() if per_image else (kl.mean() - c).abs())
        return value, {"recon": recon.detach(), "kl": kl.mean().detach(),
                       "capacity": torch.tensor(float(c), device=x.device)}
    return objective


class DBVAEFamily(VAEFamily):
    kind = "dbvae"
    fuses_as = "capacity"  # training/fused/losses.py computes this objective for stacked members
    description = "disentangled beta-VAE: the KL held at a capacity C raised linearly, gamma |KL - C|"
    methods = ("gradient",)
    example = {"encoder": [16], "latent_dim": 2, "gamma": 10, "capacity_max": 5, "capacity_epochs": 2}

    def build(self, spec, input_shape, num_classes):
        return build_variational(DBVAE, spec, input_shape)

    def objective(self, spec, train):
        return dbvae_objective(train.loss, spec.gamma, spec.capacity, spec.capacity_of == "image")


FAMILY = DBVAEFamily()
