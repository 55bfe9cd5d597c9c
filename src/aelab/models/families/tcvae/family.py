"""``kind: tcvae``: the beta-TCVAE (Chen, Li, Grosse & Duvenaud 2018,
"Isolating Sources of Disentanglement in Variational Autoencoders", eq. 4):

    L = E_q(z|n)[log p(n|z)] - alpha I_q(z; n) - beta KL(q(z) || prod_j q(z_j))
        - gamma sum_j KL(q(z_j) || p(z_j))

on the VAE's module (a Gaussian code, p(z) = N(0, I)).  The loss is -L per
image, averaged over the batch: the reconstruction summed over the image's
pixels plus the three terms of eq. 2, each estimated at the code z ~ q(z|n)
drawn for the image, with q(z) and q(z_j) from the minibatch
(:mod:`.estimators`: minibatch-weighted sampling as sec. 4, or stratified).
Codes are drawn in training and validation alike (the estimators need
draws of q(z|n)), from torch's global RNG, which the gradient trainer seeds
every epoch.  alpha = beta = gamma = 1 is the VAE's negative ELBO with the
KL estimated by the same draw, log q(z|n) - log p(z).  Beside the VAE's
metrics it reports ``mi``, ``tc`` and ``dimwise_kl``: the decomposition of
at most ``eval.max_samples`` test images, one code each from a generator
seeded ``eval.seed``, with q(z) over all of them (they add up to the mean
analytic KL).
"""
from __future__ import annotations

import torch

from .... import metrics as M
from ....evaluation import autoencoder_metrics, elbo_metrics, eval_split
from ....training.objectives import Objective, summed_loss
from ...autoencoder import VAE, kld
from ...build import variational_parts
from ..vae.family import VAEFamily
from .estimators import minibatch_terms, split_decomposition

TERMS = ("mi", "tc", "dimwise_kl")


class TCVAE(VAE):
    """The VAE module (x -> (mu, logvar) -> z -> x_hat, unchanged) under the name ``tcvae``."""

    kind = "tcvae"
    # what fused training stacks (aelab.training.fused.stack.layout): the VAE's parts, under eq. 4
    fused_layout = (("body", "to_mu", "to_logvar", "decoder"), "decomposed")


def build_variational(cls, spec, input_shape):
    """A VAE module of class ``cls``, built in the VAE's order (one seed, the same initial weights)."""
    return cls(*variational_parts(spec, input_shape), spec.latent_dim)


def tcvae_objective(loss: str, alpha: float, beta: float, gamma: float, dataset_size: int | None = None,
                    estimator: str = "mws") -> Objective:
    """Eq. 4 negated: summed reconstruction + alpha MI + beta TC + gamma
    dimension-wise KL per image, averaged over the batch; N is
    ``dataset_size`` (None: the batch's size)."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        mu, logvar = model.encode(x)
        z = model.reparameterize(mu, logvar)
        recon = fn(model.decode(z), x)
        t = minibatch_terms(z, mu, logvar, dataset_size or len(x), estimator)
        mi, tc, dim = t["mi"].mean(), t["tc"].mean(), t["dimwise_kl"].mean()
        value = recon + alpha * mi + beta * tc + gamma * dim
        return value, {"recon": recon.detach(), "kl": kld(mu, logvar).mean().detach(), "mi": mi.detach(),
                       "tc": tc.detach(), "dimwise_kl": dim.detach()}
    return objective


@torch.no_grad()
def posterior_draws(model, x, device, seed: int, batch_size: int = 1024):
    """(z, mu, logvar) of ``x`` in eval mode, one z ~ q(z|x) per image from a generator seeded ``seed``."""
    model.eval()
    gen, out = torch.Generator().manual_seed(seed), []
    for i in range(0, len(x), batch_size):
        mu, logvar = model.encode(torch.as_tensor(x[i:i + batch_size], device=device))
        eps = torch.randn(mu.shape, generator=gen).to(device)
        out.append((mu + torch.exp(0.5 * logvar) * eps, mu, logvar))
    return [torch.cat(t).cpu() for t in zip(*out)]


def decomposition_metrics(model, x, device, max_samples: int, seed: int) -> dict[str, float]:
    """mi, tc and dimwise_kl of at most ``max_samples`` images of ``x`` (a seeded subset)."""
    return split_decomposition(*posterior_draws(model, x[M.subsample(len(x), max_samples, seed)], device, seed))


class TCVAEFamily(VAEFamily):
    kind = "tcvae"
    fuses_as = "decomposed"  # training/fused/losses.py computes this objective for stacked members
    description = ("beta-TCVAE: the VAE's KL split into index-code MI, total correlation and dimension-wise KL, "
                   "weighted alpha, beta, gamma")
    metric_names = VAEFamily.metric_names + TERMS
    methods = ("gradient",)
    example = {"encoder": [16], "latent_dim": 2}

    def build(self, spec, input_shape, num_classes):
        return build_variational(TCVAE, spec, input_shape)

    def resolved(self, spec, data):
        """An empty ``dataset_size`` becomes N, the training split's size."""
        if spec.dataset_size is not None:
            return spec
        return spec.model_copy(update={"dataset_size": len(data.x_train)})

    def objective(self, spec, train):
        return tcvae_objective(train.loss, spec.alpha, spec.beta, spec.gamma, spec.dataset_size, spec.estimator)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        return (autoencoder_metrics(model, cfg, data, device)
                | elbo_metrics(model, x, cfg.train.loss, device, cfg.eval.seed)
                | decomposition_metrics(model, x, device, cfg.eval.max_samples, cfg.eval.seed))


FAMILY = TCVAEFamily()
