"""``kind: factorvae``: FactorVAE (Kim & Mnih 2018, "Disentangling by
Factorising")."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import Activation, LayerSpec
from ..aae.config import CriticFields, dense


class FactorVAESpec(CriticFields):
    """The VAE's negative ELBO plus ``gamma`` times the total correlation
    of q(z), estimated by a discriminator on the codes with the
    density-ratio trick (eq. 2).  The discriminator defaults to the paper's:
    six layers of 1,000 leaky-ReLU units.  ``gamma`` defaults to 10, the
    low end of the paper's sweep on 2D shapes (10 to 100; Pythae's default
    is 2)."""

    kind: Literal["factorvae"] = "factorvae"
    gamma: float = Field(default=10.0, ge=0.0, allow_inf_nan=False, description="the weight of the TC estimate")
    discriminator: list[LayerSpec] = Field(default_factory=lambda: dense(*[1000] * 6))
    discriminator_activation: Activation = "leaky_relu"

    def describe(self, model_info: dict) -> str:
        return f"{super().describe(model_info)}, gamma {self.gamma:g}"


SPEC = FactorVAESpec
