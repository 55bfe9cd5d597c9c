"""``kind: gan``: a generator and a discriminator (Goodfellow et al. 2014,
"Generative Adversarial Nets"), trained by ``train.method: adversarial``.

The generator maps a code ``z ~ N(0, I)`` of ``latent_dim`` values to an
image, so it declares ``decode`` (LSO can optimize ``z``) and
``generative`` (it samples); it has no encoder, so it does not ``embed``.
Its metrics measure the samples without a judge: their diversity (mean
pairwise L2 distance of 256 samples) beside the same for real test images,
and the mean distance of each sample to its nearest training image (a
copy of the training set would score 0).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ....figures import prior_figures
from ...build import explicit_decoder, head
from ...family import DECODE, GENERATIVE, Family
from ...layers import build_stack, layer_activation
from ...mirror import mirror_decoder

SAMPLES = 256  # samples the metrics draw


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
    metric_names = ("diversity", "real_diversity", "nn_distance")
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

    @torch.no_grad()
    def metrics(self, model, cfg, data, device):
        model.eval()
        gen = torch.Generator().manual_seed(cfg.eval.seed)
        fake = model.sample(SAMPLES, generator=gen).flatten(1).cpu()
        real = torch.as_tensor(data.x_test if len(data.x_test) else data.x_train)[:SAMPLES].flatten(1)
        train = torch.as_tensor(data.x_train).flatten(1)
        return {"diversity": mean_pairwise_distance(fake), "real_diversity": mean_pairwise_distance(real),
                "nn_distance": float(torch.cdist(fake, train).min(dim=1).values.mean())}

    def figures(self, folder, model, data, device, seed):
        return prior_figures(folder, model, device, seed)


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance over the distinct pairs of rows of ``x`` (N, D)."""
    n = len(x)
    d = torch.cdist(x.double(), x.double())
    return float(d.sum() / (n * (n - 1))) if n > 1 else 0.0


FAMILY = GANFamily()
