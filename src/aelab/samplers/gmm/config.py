"""``--sampler gmm``: the number of mixture components."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import SamplerSpec


class GMMSpec(SamplerSpec):
    """Codes from a Gaussian mixture of ``components`` full-covariance
    components fitted to the training codes (Pythae's GMM sampler uses 10)."""

    sampler: Literal["gmm"] = "gmm"
    components: int = Field(10, ge=1)


SPEC = GMMSpec
