"""``--sampler gaussian``: no options."""
from __future__ import annotations

from typing import Literal

from .. import SamplerSpec


class GaussianSpec(SamplerSpec):
    """Codes from a full-covariance Gaussian fitted to the training codes."""

    sampler: Literal["gaussian"] = "gaussian"


SPEC = GaussianSpec
