"""``--sampler prior``: no options."""
from __future__ import annotations

from typing import Literal

from .. import SamplerSpec


class PriorSpec(SamplerSpec):
    """Codes from the model's own prior."""

    sampler: Literal["prior"] = "prior"


SPEC = PriorSpec
