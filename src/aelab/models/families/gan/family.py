"""``kind: gan``: a generator and a discriminator (Goodfellow et al. 2014,
"Generative Adversarial Nets"), trained by ``train.method: adversarial``.

The generator maps a code ``z ~ N(0, I)`` of ``latent_dim`` values to an
image, so it declares ``decode`` (LSO can optimize ``z``) and
``generative`` (it samples); it has no encoder, so it does not ``embed``.
It is measured like every generator (:mod:`aelab.generation`): the
diversity of its samples beside the real images', their distance to the
nearest training image and, with a judge, the Frechet distance, precision,
recall and class coverage.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ....figures import prior_figures
from ...build import explicit_decoder, head
from ...family import DECODE, GENERATIVE, Family
from ...layers import build_stack, layer_activation
from ...mirror import mirror_decoder

class GAN(nn.Module):
    """``generator``: (B, latent) -> (B, C, H, W); ``discriminator``: (B, C, H, W) -> (B,) logits."""

    kind = "gan"
    capabilities = frozenset({DECODE, GENERATIVE})

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int):
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x).squeeze(1)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x_hat": self.decode(z)}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        dev = next(self.parameters()).device
        return self.decode(torch.randn(n, self.latent_dim, generator=generator).to(dev))


class GANFamily(Family):
    kind = "gan"
    description = "GAN: a generator from N(0, I) codes and a discriminator, trained adversarially"
    capabilities = GAN.capabilities
    methods = ("adversarial",)
    example = {"discriminator": [16], "latent_dim": 4}

    def build(self, spec, input_shape, num_classes):
        acts = [layer_activation(s, spec.discriminator_activation) for s in spec.discriminator]
        body, shapes = build_stack(spec.discriminator, input_shape, acts, "model.discriminator")
        discriminator = nn.Sequential(body, head(shapes[-1], 1, "linear"))
        if spec.generator == "mirror":
            generator = mirror_decoder(spec.discriminator, shapes, spec.latent_dim, spec.activation,
                                       spec.output_activation)
        else:
            generator = explicit_decoder(spec, spec.generator, input_shape, spec.latent_dim, "model.generator")
        return GAN(generator, discriminator, spec.latent_dim)

    def objective(self, spec, train):
        raise NotImplementedError("a GAN has no single objective: train.method adversarial alternates two")

    def game(self, spec, train):
        from ....training.methods.adversarial.games import ImageGame
        return ImageGame(train)

    def metrics(self, model, cfg, data, device):
        return {}  # what a GAN is measured by is every generator's (aelab.generation)

    def figures(self, folder, model, data, device, seed):
        return prior_figures(folder, model, device, seed)


FAMILY = GANFamily()
