"""``kind: iwae``: the importance weighted autoencoder (Burda, Grosse &
Salakhutdinov 2016, "Importance Weighted Autoencoders")."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import AutoencoderSpecBase


class IWAESpec(AutoencoderSpecBase):
    """The VAE's model (Gaussian code, N(0, I) prior, one stochastic layer)
    trained on the k-sample bound L_k (eq. 8) instead of the ELBO: ``samples``
    is k (default 5; k = 1 is the VAE's bound)."""

    kind: Literal["iwae"] = "iwae"
    samples: int = Field(default=5, ge=1, le=10_000, description="k, the importance samples per image")

    def describe(self, model_info: dict) -> str:
        return f"{super().describe(model_info)}, k {self.samples}"


SPEC = IWAESpec
