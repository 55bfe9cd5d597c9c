"""``kind: aae``: the adversarial autoencoder (Makhzani, Shlens, Jaitly,
Goodfellow & Frey 2016, "Adversarial Autoencoders").  The fields a
discriminator-carrying autoencoder shares (:class:`CriticFields`) are
reused by ``factorvae`` and ``vaegan``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import Activation, AutoencoderSpecBase, LayerSpec

Reconstruction = Literal["mse", "mae", "bce"]


def dense(*units: int) -> list[LayerSpec]:
    return [LayerSpec(type="dense", units=u) for u in units]


class CriticFields(AutoencoderSpecBase):
    """An autoencoder with a discriminator in the layer vocabulary, trained
    by ``train.method: adversarial`` (whose ``loss`` names the adversarial
    loss, so the reconstruction loss is the model's ``reconstruction``)."""

    discriminator: list[LayerSpec] = Field(default_factory=lambda: dense(1000, 1000))
    discriminator_activation: Activation = "relu"
    reconstruction: Reconstruction = Field(default="mse", description="the reconstruction loss, summed over pixels")

    def describe(self, model_info: dict) -> str:
        layers = "-".join(str(layer.units or layer.filters or layer.type) for layer in self.discriminator)
        return f"{super().describe(model_info)}, discriminator [{layers}]"


class AAESpec(CriticFields):
    """A deterministic autoencoder whose codes a discriminator on the
    latent space pushes towards the prior N(0, I): the reconstruction plus
    ``adversarial_weight`` times the encoder's adversarial loss.  The
    discriminator defaults to the paper's MNIST one, two ReLU layers of
    1,000 units."""

    kind: Literal["aae"] = "aae"
    adversarial_weight: float = Field(default=1.0, ge=0.0, allow_inf_nan=False,
                                      description="the weight of the encoder's adversarial loss")


SPEC = AAESpec
