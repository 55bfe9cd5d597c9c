"""``kind: iwae``: the importance weighted autoencoder (Burda, Grosse &
Salakhutdinov 2016): the VAE's module trained to maximize L_k (eq. 8,
:mod:`.bound`) with the reparameterized gradient estimator of eq. 13-14.

The loss is -L_k per image averaged over the batch, with k codes drawn per
image from torch's global RNG (seeded every epoch by the gradient trainer,
so a resumed run draws the same), in training and validation alike: the
bound is an expectation over the draws.  Beside the VAE's metrics (the ELBO
still: the single-sample ``elbo`` of the same test images) it reports
``iwae_bound``: the mean L_k on the test split, k = ``samples``, the draws
from a generator seeded ``eval.seed``.
"""
from __future__ import annotations

import torch

from ....evaluation import autoencoder_metrics, elbo_metrics, eval_split
from ....training.objectives import Objective, elementwise_loss
from ...autoencoder import VAE, kld
from ..tcvae.family import build_variational
from ..vae.family import VAEFamily
from .bound import bound, log_weights, split_bound


class IWAE(VAE):
    """The VAE module (x -> (mu, logvar) -> z -> x_hat, unchanged) under the name ``iwae``."""

    kind = "iwae"
    # what fused training stacks (aelab.training.fused.stack.layout): the VAE's parts, under L_k
    fused_layout = (("body", "to_mu", "to_logvar", "decoder"), "importance")


def iwae_objective(loss: str, k: int) -> Objective:
    """-L_k (eq. 8) averaged over the batch, k codes per image."""
    fn = elementwise_loss(loss)

    def objective(model, x, y, epoch):
        mu, logvar = model.encode(x)
        eps = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype)
        log_w, log_px = log_weights(model, x, mu, logvar, eps, fn)
        value = -bound(log_w).mean()
        return value, {"recon": -log_px.mean().detach(), "kl": kld(mu, logvar).mean().detach()}
    return objective


class IWAEFamily(VAEFamily):
    kind = "iwae"
    fuses_as = "importance"  # training/fused/losses.py computes this objective for stacked members
    description = "importance weighted autoencoder: the VAE's model trained on the k-sample bound L_k"
    metric_names = VAEFamily.metric_names + ("iwae_bound",)
    methods = ("gradient",)
    example = {"encoder": [16], "latent_dim": 2, "samples": 3}

    def build(self, spec, input_shape, num_classes):
        return build_variational(IWAE, spec, input_shape)

    def objective(self, spec, train):
        return iwae_objective(train.loss, spec.samples)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        fn = elementwise_loss(cfg.train.loss)
        return (autoencoder_metrics(model, cfg, data, device)
                | elbo_metrics(model, x, cfg.train.loss, device, cfg.eval.seed)
                | {"iwae_bound": split_bound(model, x, cfg.model.samples, fn, device, cfg.eval.seed)})


FAMILY = IWAEFamily()
