"""``kind: factorvae``: FactorVAE (Kim & Mnih 2018), trained by
``train.method: adversarial`` on the game of :mod:`.game`.  Its module is
the VAE's plus a discriminator on the codes.  Beside the VAE's metrics
(the ELBO with the model's ``reconstruction`` loss) it reports ``tc``: the
discriminator's estimate of the total correlation, E[logit D(z)] over one
seeded draw of q(z|x) for each of at most ``eval.max_samples`` test images.
"""
from __future__ import annotations

import torch

from .... import metrics as M
from ....evaluation import autoencoder_metrics, elbo_metrics, eval_split
from ....figures import autoencoder_figures, prior_figures
from ...autoencoder import VAE
from ...build import variational_parts
from ...family import DECODE, EMBED, GENERATIVE, Family
from ..aae.family import critic_network
from ..infovae.family import posterior_codes
from ..vae.family import VAEFamily


class FactorVAEModel(VAE):
    """The VAE with a ``discriminator`` on its codes."""

    kind = "factorvae"
    capabilities = frozenset({EMBED, DECODE, GENERATIVE})

    def __init__(self, body, to_mu, to_logvar, decoder, latent_dim: int, discriminator):
        super().__init__(body, to_mu, to_logvar, decoder, latent_dim)
        self.discriminator = discriminator

    def critic(self, z: torch.Tensor) -> torch.Tensor:
        return self.discriminator(z).squeeze(1)


@torch.no_grad()
def tc_estimate(model, z, device) -> float:
    model.eval()
    return float(model.critic(torch.as_tensor(z, dtype=torch.float32, device=device)).mean())


class FactorVAEFamily(Family):
    kind = "factorvae"
    description = "FactorVAE: the VAE's loss plus gamma times a discriminator's estimate of the codes' total correlation"
    capabilities = FactorVAEModel.capabilities
    metric_names = VAEFamily.metric_names + ("tc",)
    methods = ("adversarial",)
    example = {"encoder": [16], "latent_dim": 2, "discriminator": [{"type": "dense", "units": 16}]}

    def build(self, spec, input_shape, num_classes):
        return FactorVAEModel(*variational_parts(spec, input_shape), spec.latent_dim,
                              critic_network(spec, (spec.latent_dim,)))

    def objective(self, spec, train):
        raise NotImplementedError("FactorVAE alternates two objectives: train.method adversarial")

    def game(self, spec, train):
        from .game import FactorGame
        return FactorGame(train, spec.reconstruction, spec.gamma)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        z = posterior_codes(model, x[M.subsample(len(x), cfg.eval.max_samples, cfg.eval.seed)], device,
                            cfg.eval.seed)
        return (autoencoder_metrics(model, cfg, data, device)
                | elbo_metrics(model, x, cfg.model.reconstruction, device, cfg.eval.seed)
                | {"tc": tc_estimate(model, z, device)})

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device) + prior_figures(folder, model, device, seed)


FAMILY = FactorVAEFamily()
