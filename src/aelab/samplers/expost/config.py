"""``--sampler expost``: the number of mixture components (the paper's 10)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import SamplerSpec


class ExPostSpec(SamplerSpec):
    """Codes from the ex-post density estimate of Ghosh et al. (2020, "From
    Variational to Deterministic Autoencoders", Sec. 4.1): a Gaussian
    mixture of ``components`` full-covariance components (the paper's 10)
    fitted to the training codes after training."""

    sampler: Literal["expost"] = "expost"
    components: int = Field(10, ge=1)


SPEC = ExPostSpec
