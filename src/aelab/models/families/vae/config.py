"""``kind: vae``: a variational autoencoder (Kingma & Welling 2014)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import AutoencoderSpecBase


class VAESpec(AutoencoderSpecBase):
    """An autoencoder whose code is a Gaussian (``mu``, ``logvar``): the
    negative ELBO with ``beta`` on the KL term (Higgins et al. 2017), ramped
    up from 0 over ``kl_warmup`` epochs (Bowman et al. 2016)."""

    kind: Literal["vae"] = "vae"
    beta: float = Field(default=1.0, ge=0.0)
    kl_warmup: int = Field(default=0, ge=0, description="epochs over which beta ramps up from 0")

    def describe(self, model_info: dict) -> str:
        return f"{super().describe(model_info)}, beta {self.beta:g}"


SPEC = VAESpec
