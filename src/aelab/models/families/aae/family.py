"""``kind: aae``: the adversarial autoencoder (Makhzani, Shlens, Jaitly,
Goodfellow & Frey 2016), trained by ``train.method: adversarial`` on the
game of :mod:`.game`.  Its module is the plain autoencoder's (x -> z ->
x_hat) plus a discriminator on the codes; since the codes are matched to
N(0, I), the model samples by decoding prior draws.  Beside the
autoencoder's metrics it reports ``mmd``: the multi-scale IMQ MMD of the
WAE (:mod:`..wae.mmd`) between at most ``eval.max_samples`` test codes and
as many N(0, I) draws seeded by ``eval.seed``, so how well the adversary
matched the prior compares with the WAE's MMD penalty.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .... import metrics as M
from ....evaluation import autoencoder_metrics, embed, eval_split
from ....figures import autoencoder_figures, prior_figures
from ...autoencoder import Autoencoder
from ...build import autoencoder_parts, head
from ...family import DECODE, EMBED, GENERATIVE, Family
from ...layers import build_stack, layer_activation
from ..ae.family import AutoencoderFamily
from ..wae.family import code_mmd
from ..wae.mmd import MULTISCALE


def critic_network(spec, input_shape) -> nn.Module:
    """``spec.discriminator`` on inputs of ``input_shape`` (codes or
    images), ending in one logit: Sequential(body, head)."""
    acts = [layer_activation(s, spec.discriminator_activation) for s in spec.discriminator]
    body, shapes = build_stack(spec.discriminator, tuple(input_shape), acts, "model.discriminator")
    return nn.Sequential(body, head(shapes[-1], 1, "linear"))


class AdversarialAutoencoder(Autoencoder):
    """The autoencoder with a ``discriminator`` on its codes."""

    kind = "aae"
    capabilities = frozenset({EMBED, DECODE, GENERATIVE})

    def __init__(self, body, to_latent, decoder, discriminator: nn.Module):
        super().__init__(body, to_latent, decoder)
        self.discriminator = discriminator

    def critic(self, z: torch.Tensor) -> torch.Tensor:
        return self.discriminator(z).squeeze(1)

    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws of the prior N(0, I) the codes were matched to."""
        dev = next(self.parameters()).device
        return self.decode(torch.randn(n, self.latent_dim, generator=generator).to(dev))


def prior_mmd(model, cfg, data, device) -> float:
    x, _, _ = eval_split(data)
    z = embed(model, x[M.subsample(len(x), cfg.eval.max_samples, cfg.eval.seed)], device)
    return code_mmd(z, "imq", 1.0, MULTISCALE, cfg.eval.seed)


class AAEFamily(Family):
    kind = "aae"
    description = "adversarial autoencoder: a discriminator on the codes matches them to a N(0, I) prior"
    capabilities = AdversarialAutoencoder.capabilities
    metric_names = AutoencoderFamily.metric_names + ("mmd",)
    methods = ("adversarial",)
    example = {"encoder": [16], "latent_dim": 2, "discriminator": [{"type": "dense", "units": 16}]}

    def build(self, spec, input_shape, num_classes):
        body, to_latent, decoder = autoencoder_parts(spec, input_shape)  # the autoencoder's order, then D
        return AdversarialAutoencoder(body, to_latent, decoder, critic_network(spec, (spec.latent_dim,)))

    def objective(self, spec, train):
        raise NotImplementedError("an adversarial autoencoder alternates two objectives: train.method adversarial")

    def game(self, spec, train):
        from .game import CodeGame
        return CodeGame(train, spec.reconstruction, spec.adversarial_weight)

    def metrics(self, model, cfg, data, device):
        return autoencoder_metrics(model, cfg, data, device) | {"mmd": prior_mmd(model, cfg, data, device)}

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device) + prior_figures(folder, model, device, seed)


FAMILY = AAEFamily()
