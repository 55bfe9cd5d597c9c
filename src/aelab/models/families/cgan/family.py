"""``kind: cgan``: the conditional GAN (Mirza & Osindero 2014, "Conditional
Generative Adversarial Nets"), trained by ``train.method: adversarial``.

Section 3.2 of the paper feeds the label ``y`` to both players as an extra
input: the generator sees ``[z, onehot(y)]``, the discriminator ``x`` with
``y`` beside it, and the value function becomes (eq. 2)
``min_G max_D E[log D(x|y)] + E[log(1 - D(G(z|y)|y))]``.  Beside the image
the label is joined as the first layer can read it: for a dense first layer
the one-hot row is appended to the flattened image (the paper's MLP); for a
convolutional one it becomes K constant planes, one per class, stacked on
the image's channels (the usual DCGAN-style reading).  ``sample(n, y)``
draws a digit of the class asked for, so the family is ``conditional`` as
well as ``decode`` and ``generative``: LSO optimizes ``z`` with the class
given.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ....errors import ModelSpecError
from ....figures import class_grid, prior_figures
from ...build import explicit_decoder, head
from ...conditioning import one_hot, sample_classes
from ...family import CONDITIONAL, DECODE, GENERATIVE
from ...layers import PARAMETRIC, build_stack, layer_activation, numel
from ...mirror import mirror_decoder
from ..gan.family import GAN, GANFamily


class LabelJoin(nn.Module):
    """``(x, y)`` -> the discriminator's input: ``[flatten(x), onehot(y)]``
    (``planes=False``) or ``x`` with K constant label planes (B, C+K, H, W)."""

    def __init__(self, num_classes: int, planes: bool):
        super().__init__()
        self.num_classes, self.planes = num_classes, planes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = one_hot(y, self.num_classes).to(x.dtype)  # (B, K)
        if not self.planes:
            return torch.cat([x.flatten(1), c], dim=1)
        return torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)


class CGAN(GAN):
    """``decode(z, y)``: [z, onehot(y)] -> generator -> image;
    ``critic(x, y)``: join(x, y) -> discriminator -> logit."""

    kind = "cgan"
    capabilities = frozenset({DECODE, GENERATIVE, CONDITIONAL})

    def __init__(self, generator: nn.Module, discriminator: nn.Module, join: LabelJoin, latent_dim: int,
                 num_classes: int):
        super().__init__(generator, discriminator, latent_dim)
        self.join, self.num_classes = join, num_classes

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, latent), (B,) or (B, K)
        return self.generator(torch.cat([z, one_hot(y, self.num_classes).to(z.dtype)], dim=1))

    def critic(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self.join(x, y)).squeeze(1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x_hat": self.decode(z, y)}

    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` prior draws decoded as class ``y`` (default: the classes in turn)."""
        return sample_classes(self, n, y, generator)


class CGANFamily(GANFamily):
    kind = "cgan"
    description = "conditional GAN: generator and discriminator see the one-hot label; sample(n, y) draws a class"
    capabilities = CGAN.capabilities
    needs_labels = True

    def build(self, spec, input_shape, num_classes):
        if not num_classes:
            raise ModelSpecError("model.kind: cgan conditions on labels; the data set has none")
        first = next((s for s in spec.discriminator if s.type in PARAMETRIC), None)
        planes = first is not None and first.type != "dense"
        c, h, w = input_shape
        joined = (c + num_classes, h, w) if planes else (numel(input_shape) + num_classes,)
        acts = [layer_activation(s, spec.discriminator_activation) for s in spec.discriminator]
        body, shapes = build_stack(spec.discriminator, joined, acts, "model.discriminator")
        discriminator = nn.Sequential(body, head(shapes[-1], 1, "linear"))
        latent_in = spec.latent_dim + num_classes
        if spec.generator == "mirror":  # mirror the discriminator as it reads the image alone
            _, image_shapes = build_stack(spec.discriminator, input_shape, acts, "model.discriminator")
            generator = mirror_decoder(spec.discriminator, image_shapes, latent_in, spec.activation,
                                       spec.output_activation)
        else:
            generator = explicit_decoder(spec, spec.generator, input_shape, latent_in, "model.generator")
        return CGAN(generator, discriminator, LabelJoin(num_classes, planes), spec.latent_dim, num_classes)

    def figures(self, folder, model, data, device, seed):
        return prior_figures(folder, model, device, seed) + [class_grid(folder, model, device, seed)]


FAMILY = CGANFamily()
