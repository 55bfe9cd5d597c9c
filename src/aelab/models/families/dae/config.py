"""``kind: dae``: the denoising autoencoder (Vincent, Larochelle, Bengio &
Manzagol 2008)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ....spec_base import AutoencoderSpecBase

NOISES = ("gaussian", "masking", "salt_pepper")
FRACTIONS = ("masking", "salt_pepper")  # noise_level is a fraction of the inputs: at most 1


class DAESpec(AutoencoderSpecBase):
    """An autoencoder trained to rebuild the clean input from a corrupted
    copy x~ ~ q_D(x~|x).  ``noise`` is one of the corruptions of Vincent et
    al. 2010 (JMLR 11, "Types of corruption considered"), ``noise_level`` its
    strength: ``gaussian`` adds N(0, noise_level^2) to every input;
    ``masking`` sets a fraction ``noise_level`` of each example's inputs to 0;
    ``salt_pepper`` sets that fraction to the data's minimum or maximum (a fair
    coin for each)."""

    kind: Literal["dae"] = "dae"
    noise: Literal[NOISES] = "masking"
    noise_level: float = Field(default=0.25, ge=0.0, allow_inf_nan=False,
                               description="gaussian: the std; masking, salt_pepper: the fraction of inputs")

    @field_validator("noise_level")
    @classmethod
    def _fraction(cls, v: float, info: ValidationInfo) -> float:
        noise = info.data.get("noise")
        if noise in FRACTIONS and v > 1:
            raise ValueError(f"{noise} noise corrupts a fraction of the inputs: expected at most 1")
        return v

    def describe(self, model_info: dict) -> str:
        return f"{super().describe(model_info)}, {self.noise} noise {self.noise_level:g}"


SPEC = DAESpec
