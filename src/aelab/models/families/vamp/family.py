"""``kind: vamp``: the VAE with the VampPrior (Tomczak & Welling 2018, "VAE
with a VampPrior", eq. 9 and Sec. 3):

    p_lambda(z) = 1/K sum_k q_phi(z | u_k)

The prior is the mixture of the encoder's own posteriors at K learned
pseudo-inputs u_k, so it follows the aggregate posterior instead of
pulling every code to N(0, I).  The pseudo-inputs are made as in the
paper's code: a linear layer without bias applied to the K x K identity,
i.e. u_k is column k of its weight, passed through a hardtanh to [0, 1]
(``pseudo_activation: hardtanh``; ``linear`` leaves them unbounded).  The
weights start at N(0.05, 0.01), inside the hardtanh's range so that every
pseudo-pixel gets a gradient (the authors' std; made after the VAE's own
layers, so one seed gives a VAMP and a plain VAE the same encoder and
decoder).  The loss is the negative ELBO with the KL taken at the single
reparameterized draw (:mod:`.prior`): recon + beta * (log q(z|x) - log p(z)),
beta ramped over ``kl_warmup`` epochs as for the VAE.

It samples from the VampPrior: ``sample(n)`` picks a pseudo-input uniformly
and decodes a draw of q(z | u_k) (``prior_codes``, which the ``prior``
sampler draws too).  metrics.json holds the autoencoder's metrics and the
ELBO on the evaluation split with the VampPrior (``elbo``, ``recon_term``,
``kl``: one seeded draw per image, the KL estimated at it as in training),
beside the generation yardsticks every generative family gets.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ....evaluation import autoencoder_metrics, eval_split
from ....figures import autoencoder_figures
from ....training.objectives import Objective, elementwise_loss, kl_weight, summed_loss
from ...autoencoder import VAE
from ...build import variational_parts
from ...family import DECODE, EMBED, GENERATIVE
from ..vae.family import VAEFamily
from .prior import draw_components, single_sample_kl

PSEUDO_INIT = (0.05, 0.01)  # mean, std of the pseudo-inputs' weights


class VampVAE(VAE):
    """The VAE module with K learned pseudo-inputs and the VampPrior over them."""

    kind = "vamp"
    capabilities = frozenset({EMBED, DECODE, GENERATIVE})

    def __init__(self, body, to_mu, to_logvar, decoder, latent_dim: int, input_shape: tuple[int, ...],
                 components: int, pseudo_activation: str = "hardtanh"):
        super().__init__(body, to_mu, to_logvar, decoder, latent_dim)
        self.input_shape, self.pseudo_activation = tuple(input_shape), pseudo_activation
        # the paper's linear layer from the identity: u_k = column k of its weight (here row k)
        self.pseudo = nn.Parameter(torch.empty(components, math.prod(input_shape)))
        nn.init.normal_(self.pseudo, *PSEUDO_INIT)

    @property
    def components(self) -> int:
        return len(self.pseudo)

    def pseudo_inputs(self) -> torch.Tensor:
        """The K pseudo-inputs u_k as images (K, C, H, W)."""
        u = F.hardtanh(self.pseudo, 0.0, 1.0) if self.pseudo_activation == "hardtanh" else self.pseudo
        return u.view(-1, *self.input_shape)

    def prior_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu_k, logvar_k) of the mixture's components q(z | u_k): (K, latent) each."""
        return self.encode(self.pseudo_inputs())

    def prior_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws of the VampPrior (a pseudo-input uniformly, then q(z | u_k))."""
        return draw_components(*self.prior_params(), n, generator)

    def prior_description(self) -> str:
        return f"VampPrior: 1/K sum_k q(z | u_k) over K = {self.components} learned pseudo-inputs"

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws of the VampPrior."""
        return self.decode(self.prior_codes(n, generator))


def vamp_objective(loss: str, beta: float, warmup: int) -> Objective:
    """The negative ELBO with the VampPrior per example: reconstruction
    summed over pixels plus beta * (log q(z|x) - log p(z)) at the draw.
    z is drawn in evaluation mode too, so the validation loss is the same
    estimate (at z = mu, log q(mu|x) is the density's peak: not the KL's estimate)."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        mu, logvar = model.encode(x)
        z = model.reparameterize(mu, logvar)            # z ~ q(z|x), as the forward pass draws it in training
        recon = fn(model.decode(z), x)
        kl = single_sample_kl(z, mu, logvar, *model.prior_params()).mean()
        value = recon + kl_weight(beta, warmup, epoch) * kl
        return value, {"recon": recon.detach(), "kl": kl.detach()}
    return objective


@torch.no_grad()
def vamp_elbo_metrics(model, x: np.ndarray, loss: str, device, seed: int, batch: int = 1024) -> dict[str, float]:
    """Per-example ELBO with the VampPrior, -(recon + log q(z|x) - log p(z)),
    at one draw per image from a generator seeded ``seed`` (the draws of
    :func:`aelab.evaluation.elbo_metrics` for the standard prior, so the two
    are comparable on one network)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    fn, recon, kl = elementwise_loss(loss), 0.0, 0.0
    prior = model.prior_params()
    for i in range(0, len(x), batch):
        xb = torch.as_tensor(x[i:i + batch], device=device)
        mu, logvar = model.encode(xb)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen).to(device)
        recon += float(fn(model.decode(z), xb).flatten(1).sum(1).sum())
        kl += float(single_sample_kl(z, mu, logvar, *prior).sum())
    recon, kl = recon / len(x), kl / len(x)
    return {"elbo": -(recon + kl), "recon_term": recon, "kl": kl}


class VampFamily(VAEFamily):
    kind = "vamp"
    description = "VAE with the VampPrior (Tomczak & Welling 2018): a mixture of posteriors at K learned pseudo-inputs"
    capabilities = VampVAE.capabilities
    metric_names = VAEFamily.metric_names  # the autoencoder's and the ELBO's, with the VampPrior
    methods = ("gradient",)
    example = {"encoder": [16], "latent_dim": 2, "components": 6}

    def build(self, spec, input_shape, num_classes):
        return VampVAE(*variational_parts(spec, input_shape), spec.latent_dim, input_shape, spec.components,
                       spec.pseudo_activation)

    def objective(self, spec, train):
        return vamp_objective(train.loss, spec.beta, spec.kl_warmup)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        return autoencoder_metrics(model, cfg, data, device) | vamp_elbo_metrics(model, x, cfg.train.loss, device,
                                                                                 cfg.eval.seed)

    @torch.no_grad()
    def figures(self, folder, model, data, device, seed):
        from .... import plots
        model.eval()
        samples = model.sample(40, generator=torch.Generator().manual_seed(seed)).cpu().numpy()
        shown = model.pseudo_inputs()[:40].cpu().numpy()
        return autoencoder_figures(folder, model, data, device) + [
            plots.save_image_grid(samples, folder / "samples.png", ncols=10,
                                  title=f"Random samples from the VampPrior (K = {model.components})"),
            plots.save_image_grid(shown, folder / "pseudo_inputs.png", ncols=10,
                                  title=f"The first {len(shown)} of the {model.components} learned pseudo-inputs")]


FAMILY = VampFamily()
