"""``kind: vaegan``: the VAE-GAN (Larsen et al. 2016), trained by
``train.method: adversarial`` on the game of :mod:`.game`.  Its module is
the VAE's plus a discriminator on images whose ``feature_layer`` measures
the reconstruction.  It samples like the VAE, from N(0, I).  Its metrics
are the autoencoder's (pixel reconstruction errors, latent quality), ``kl``
(the mean KL(q(z|x) || N(0, I)) over the test split) and
``feature_recon``: L_llike of eq. 8-9 on the test split, the distance it
was trained to shrink, measured in eval mode.
"""
from __future__ import annotations

import torch

from ....evaluation import autoencoder_metrics, eval_split
from ....figures import autoencoder_figures, prior_figures
from ...autoencoder import VAE, kld
from ...build import variational_parts
from ...family import DECODE, EMBED, GENERATIVE, Family
from ..aae.family import critic_network
from ..ae.family import AutoencoderFamily
from .game import feature_distance


class VAEGANModel(VAE):
    """The VAE with a ``discriminator`` on images; ``features`` is Dis_l."""

    kind = "vaegan"
    capabilities = frozenset({EMBED, DECODE, GENERATIVE})

    def __init__(self, body, to_mu, to_logvar, decoder, latent_dim: int, discriminator, feature_layer: int):
        super().__init__(body, to_mu, to_logvar, decoder, latent_dim)
        self.discriminator = discriminator
        self.feature_layer = feature_layer % len(discriminator[0])

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x).squeeze(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Dis_l(x): the discriminator's layers up to ``feature_layer``, flattened."""
        return self.discriminator[0][:self.feature_layer + 1](x).flatten(1)


@torch.no_grad()
def test_terms(model, x, device, batch_size: int = 1024) -> dict[str, float]:
    """Mean KL and L_llike over ``x`` (eval mode: the codes are mu)."""
    model.eval()
    kl = llike = 0.0
    for i in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[i:i + batch_size], device=device)
        mu, logvar = model.encode(xb)
        kl += float(kld(mu, logvar).sum())
        llike += float(feature_distance(model, model.decode(mu), xb)) * len(xb)
    return {"kl": kl / len(x), "feature_recon": llike / len(x)}


class VAEGANFamily(Family):
    kind = "vaegan"
    description = "VAE-GAN: a VAE whose reconstruction is measured in a GAN discriminator's features"
    capabilities = VAEGANModel.capabilities
    metric_names = AutoencoderFamily.metric_names + ("kl", "feature_recon")
    methods = ("adversarial",)
    example = {"encoder": [16], "latent_dim": 2, "discriminator": [{"type": "dense", "units": 16}]}

    def build(self, spec, input_shape, num_classes):
        return VAEGANModel(*variational_parts(spec, input_shape), spec.latent_dim, critic_network(spec, input_shape),
                           spec.feature_layer)

    def objective(self, spec, train):
        raise NotImplementedError("a VAE-GAN has three players: train.method adversarial")

    def game(self, spec, train):
        from .game import FeatureGame
        return FeatureGame(train, spec.gamma)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        return autoencoder_metrics(model, cfg, data, device) | test_terms(model, x, device)

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device) + prior_figures(folder, model, device, seed)


FAMILY = VAEGANFamily()
