"""``kind: vamp``: the VAE with the VampPrior (Tomczak & Welling 2018, "VAE
with a VampPrior", eq. 9)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..vae.config import VAESpec


class VampSpec(VAESpec):
    """The VAE (Gaussian code, the negative ELBO with ``beta`` and
    ``kl_warmup``) with the prior replaced by the VampPrior
    p(z) = 1/K sum_k q(z | u_k), a mixture of the encoder's own posteriors at
    ``components`` (K, the paper's 500) learned pseudo-inputs u_k.
    ``pseudo_activation`` is ``hardtanh`` (pseudo-pixels clipped to [0, 1],
    for images in [0, 1]: the paper's code for binary and grey images) or
    ``linear`` (unbounded, the paper's code for continuous data)."""

    kind: Literal["vamp"] = "vamp"
    components: int = Field(default=500, ge=1, le=100_000, description="K: the number of pseudo-inputs")
    pseudo_activation: Literal["hardtanh", "linear"] = "hardtanh"

    def describe(self, model_info: dict) -> str:
        return f"{super().describe(model_info)}, VampPrior K {self.components}"


SPEC = VampSpec
