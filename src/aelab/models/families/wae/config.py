"""``kind: wae``: the Wasserstein autoencoder, WAE-MMD (Tolstikhin, Bousquet,
Gelly & Schoelkopf 2018, "Wasserstein Auto-Encoders", Algorithm 2)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import AutoencoderSpecBase


class WAESpec(AutoencoderSpecBase):
    """A deterministic autoencoder whose loss adds ``mmd_weight`` (lambda)
    times MMD_k(q_z, p_z) between the batch's codes and as many draws of the
    prior p_z = N(0, ``prior_scale``^2 I).  ``kernel`` is the paper's inverse
    multiquadratics ``imq`` (the default) or ``rbf``, both scaled by
    C = 2 d sigma_z^2; ``multiscale`` (the default, as the paper's
    experiments) sums the kernel over 0.1, 0.2, 0.5, 1, 2, 5 and 10 times C,
    ``multiscale: false`` uses C alone.  lambda 10 is the paper's MNIST
    value."""

    kind: Literal["wae"] = "wae"
    kernel: Literal["imq", "rbf"] = "imq"
    mmd_weight: float = Field(default=10.0, ge=0.0, allow_inf_nan=False,
                              description="lambda: the weight of MMD(q_z, p_z)")
    prior_scale: float = Field(default=1.0, gt=0.0, allow_inf_nan=False,
                               description="sigma_z: the prior is N(0, sigma_z^2 I)")
    multiscale: bool = Field(default=True, description="sum the kernel over 0.1 .. 10 times C (the paper's)")

    def describe(self, model_info: dict) -> str:
        scales = "multiscale " if self.multiscale else ""
        return f"{super().describe(model_info)}, {scales}{self.kernel} MMD {self.mmd_weight:g}"


SPEC = WAESpec
