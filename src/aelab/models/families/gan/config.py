"""``kind: gan``: a generative adversarial network (Goodfellow et al. 2014)."""
from __future__ import annotations

from typing import Literal, Union

from pydantic import Field

from ....spec_base import MAX_SIZE, Activation, LayerSpec, Strict, _layer


class GANSpec(Strict):
    """A generator from a ``latent_dim`` standard-normal code to an image,
    and a discriminator from an image to one logit, both in the layer
    vocabulary.  ``generator: mirror`` mirrors the discriminator (as a
    decoder mirrors an encoder).  DCGAN's habits as defaults (Radford et
    al. 2016): leaky ReLU in the discriminator, ReLU in the generator."""

    kind: Literal["gan"] = "gan"
    latent_dim: int = Field(default=64, ge=1, le=MAX_SIZE)
    discriminator: list[LayerSpec] = Field(default_factory=lambda: [LayerSpec(type="dense", units=256)])
    generator: Union[Literal["mirror"], list[LayerSpec]] = "mirror"
    activation: Activation = Field(default="relu", description="the generator's dense/conv layers")
    discriminator_activation: Activation = "leaky_relu"
    output_activation: Activation = "sigmoid"

    def describe(self, model_info: dict) -> str:
        layers = ", ".join(_layer(layer) for layer in self.discriminator) or "—"
        generator = "mirror" if self.generator == "mirror" else "explicit"
        return (f"gan, discriminator [{layers}], generator {generator}, latent {self.latent_dim}, "
                f"{model_info.get('parameters', '?')} parameters")


SPEC = GANSpec
