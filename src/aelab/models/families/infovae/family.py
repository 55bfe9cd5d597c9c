"""``kind: infovae``: the InfoVAE with the MMD divergence (Zhao, Song & Ermon
2019, "InfoVAE: Balancing Learning and Inference in Variational
Autoencoders", eq. 6 with D = MMD):

    L = -E_q(z|x)[log p(x|z)] + (1 - alpha) KL(q(z|x) || p(z))
        + (alpha + lambda - 1) MMD(q(z) || p(z))

on the VAE's module (a Gaussian code, p(z) = N(0, I)).  The first two terms
are the VAE's per-example negative ELBO with the KL weighted (the
reconstruction summed over each image's pixels, averaged over the batch);
the MMD compares the batch's reparameterized codes z = mu + sigma * eps,
draws of the aggregate posterior q(z), with as many prior draws made from
torch's global RNG (:mod:`..wae.mmd`).  alpha = 0 is the paper's MMD-VAE
(the full KL plus lambda - 1 times the MMD); alpha = 1, lambda = 1 leaves
the reconstruction alone, alpha = 0, lambda = 1 the plain VAE.  Beside the
VAE's metrics it reports ``mmd``: the estimate between at most
``eval.max_samples`` test codes, drawn from q(z|x) with a generator seeded
``eval.seed``, and as many prior draws.
"""
from __future__ import annotations

import torch

from .... import metrics as M
from ....evaluation import autoencoder_metrics, elbo_metrics, eval_split
from ....training.objectives import Objective, summed_loss
from ...autoencoder import VAE, kld
from ...build import variational_parts
from ..vae.family import VAEFamily
from ..wae.family import code_mmd
from ..wae.mmd import kernel_scales, mmd, prior_draws


class InfoVAE(VAE):
    """The VAE module (x -> (mu, logvar) -> z -> x_hat, unchanged) under the name ``infovae``."""

    kind = "infovae"
    # what fused training stacks (aelab.training.fused.stack.layout): the VAE's parts, under eq. 6
    fused_layout = (("body", "to_mu", "to_logvar", "decoder"), "info")


def infovae_objective(loss: str, alpha: float, weight: float, kernel: str,
                      scales: tuple[float, ...] = (1.0,)) -> Objective:
    """Eq. 6: summed reconstruction + (1 - alpha) KL + (alpha + weight - 1)
    MMD(q(z) || N(0, I)) of the batch's sampled codes."""
    fn, kl_w, mmd_w = summed_loss(loss), 1.0 - alpha, alpha + weight - 1.0

    def objective(model, x, y, epoch):
        out = model(x)
        z = out["z"]
        recon, kl = fn(out["x_hat"], x), kld(out["mu"], out["logvar"]).mean()
        divergence = mmd(z, prior_draws(z), kernel, 1.0, scales)
        value = recon + kl_w * kl + mmd_w * divergence
        return value, {"recon": recon.detach(), "kl": kl.detach(), "mmd": divergence.detach()}
    return objective


@torch.no_grad()
def posterior_codes(model, x, device, seed: int, batch_size: int = 1024):
    """One draw of q(z|x) per image (eval mode, a generator seeded ``seed``): numpy (n, d)."""
    model.eval()
    gen, chunks = torch.Generator().manual_seed(seed), []
    for i in range(0, len(x), batch_size):
        mu, logvar = model.encode(torch.as_tensor(x[i:i + batch_size], device=device))
        eps = torch.randn(mu.shape, generator=gen).to(device)
        chunks.append((mu + torch.exp(0.5 * logvar) * eps).double().cpu())
    return torch.cat(chunks).numpy()


class InfoVAEFamily(VAEFamily):
    kind = "infovae"
    fuses_as = "info"  # training/fused/losses.py computes this objective for stacked members
    description = "InfoVAE (MMD): the VAE's loss with the KL weighted 1 - alpha plus alpha + lambda - 1 times MMD(q(z), p(z))"
    metric_names = VAEFamily.metric_names + ("mmd",)
    methods = ("gradient",)
    example = {"encoder": [16], "latent_dim": 2, "mmd_weight": 100}

    def build(self, spec, input_shape, num_classes):
        return InfoVAE(*variational_parts(spec, input_shape), spec.latent_dim)

    def objective(self, spec, train):
        return infovae_objective(train.loss, spec.alpha, spec.mmd_weight, spec.kernel,
                                 kernel_scales(spec.multiscale))

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        z = posterior_codes(model, x[M.subsample(len(x), cfg.eval.max_samples, cfg.eval.seed)], device,
                            cfg.eval.seed)
        spec = cfg.model
        return (autoencoder_metrics(model, cfg, data, device)
                | elbo_metrics(model, x, cfg.train.loss, device, cfg.eval.seed)
                | {"mmd": code_mmd(z, spec.kernel, 1.0, kernel_scales(spec.multiscale), cfg.eval.seed)})


FAMILY = InfoVAEFamily()
