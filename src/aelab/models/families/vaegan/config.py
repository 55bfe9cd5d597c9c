"""``kind: vaegan``: the VAE-GAN (Larsen, Sønderby, Larochelle & Winther
2016, "Autoencoding beyond pixels using a learned similarity metric")."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ....spec_base import Activation, LayerSpec
from ..aae.config import CriticFields, dense


class VAEGANSpec(CriticFields):
    """A VAE whose decoder is also a GAN's generator and whose
    reconstruction error is measured in the discriminator's features:
    ``feature_layer`` indexes ``discriminator`` (default -1, its last layer,
    before the logit).  ``gamma`` weighs the feature reconstruction against
    the GAN loss in the decoder's update (eq. 9 onwards).  The discriminator
    sees images, so it may use any layer of the vocabulary
    (``reconstruction`` is unused: the reconstruction is in features)."""

    kind: Literal["vaegan"] = "vaegan"
    discriminator: list[LayerSpec] = Field(default_factory=lambda: dense(512, 256))
    discriminator_activation: Activation = "leaky_relu"
    feature_layer: int = Field(default=-1, description="the discriminator layer whose output is Dis_l(x)")
    gamma: float = Field(default=1.0, ge=0.0, allow_inf_nan=False,
                         description="the weight of the feature reconstruction in the decoder's loss")

    @field_validator("discriminator")
    @classmethod
    def _has_features(cls, v: list) -> list:
        if not v:
            raise ValueError("the feature reconstruction needs at least one discriminator layer")
        return v

    @field_validator("feature_layer")
    @classmethod
    def _feature_layer_exists(cls, v: int, info: ValidationInfo) -> int:
        n = len(info.data.get("discriminator") or [])
        if n and not -n <= v < n:
            raise ValueError(f"expected an index into the {n} discriminator layers, {-n} to {n - 1} (got {v})")
        return v


SPEC = VAEGANSpec
