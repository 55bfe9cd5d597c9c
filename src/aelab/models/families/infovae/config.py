"""``kind: infovae``: the InfoVAE with the MMD divergence (Zhao, Song & Ermon
2019, "InfoVAE: Balancing Learning and Inference in Variational
Autoencoders", eq. 6 with D = MMD)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ....spec_base import AutoencoderSpecBase


class InfoVAESpec(AutoencoderSpecBase):
    """A VAE (Gaussian code, N(0, I) prior) trained on eq. 6 of the paper,
    -E_q[log p(x|z)] + (1 - alpha) KL(q(z|x) || p(z)) + (alpha + lambda - 1)
    MMD(q(z) || p(z)).  ``alpha`` (default 0: the paper's MMD-VAE, KL weight
    1) and ``mmd_weight`` (lambda, default 1000, the paper's MNIST value; the
    reconstruction here is summed over pixels, as the paper's log-likelihood)
    must leave both weights non-negative: alpha at most 1 and alpha + lambda
    at least 1.  ``kernel`` is ``rbf`` (the default, as the paper's code) or
    ``imq``, scaled by C = 2 d; ``multiscale`` sums it over 0.1 .. 10 times C
    (default false: C alone)."""

    kind: Literal["infovae"] = "infovae"
    alpha: float = Field(default=0.0, allow_inf_nan=False,
                         description="alpha: the KL weight is 1 - alpha, the MMD weight alpha + lambda - 1")
    mmd_weight: float = Field(default=1000.0, allow_inf_nan=False, description="lambda")
    kernel: Literal["imq", "rbf"] = "rbf"
    multiscale: bool = Field(default=False, description="sum the kernel over 0.1 .. 10 times C")

    @field_validator("alpha")
    @classmethod
    def _kl_weight(cls, v: float) -> float:
        if v > 1:
            raise ValueError(f"the KL weight 1 - alpha would be negative ({1 - v:g}): expected alpha at most 1")
        return v

    @field_validator("mmd_weight")
    @classmethod
    def _mmd_weight(cls, v: float, info: ValidationInfo) -> float:
        if v < 0:
            raise ValueError(f"lambda is a weight: expected at least 0 (got {v:g})")
        alpha = info.data.get("alpha")
        if alpha is not None and alpha + v - 1 < 0:
            raise ValueError(f"the MMD weight alpha + lambda - 1 would be negative ({alpha + v - 1:g}): "
                             f"expected mmd_weight at least 1 - alpha = {1 - alpha:g}")
        return v

    def kl_weight(self) -> float:
        return 1.0 - self.alpha

    def mmd_term_weight(self) -> float:
        return self.alpha + self.mmd_weight - 1.0

    def describe(self, model_info: dict) -> str:
        return (f"{super().describe(model_info)}, KL {self.kl_weight():g}, {self.kernel} MMD "
                f"{self.mmd_term_weight():g}")


SPEC = InfoVAESpec
