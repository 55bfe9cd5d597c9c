"""``kind: rae``: the regularized autoencoder (Ghosh, Sajjadi, Vergari, Black
& Schoelkopf 2020, "From Variational to Deterministic Autoencoders", eq. 11)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import AutoencoderSpecBase


class RAESpec(AutoencoderSpecBase):
    """A deterministic autoencoder trained on eq. 11 of the paper,
    L_REC + beta * 1/2 ||z||^2 + lambda * L_REG, with ``regularization``
    ``l2`` (RAE-L2: L_REG = ||theta||^2 over the decoder's parameters, the
    paper's weight decay on the decoder only) or ``gp`` (RAE-GP: L_REG =
    ||grad_z D(z)||^2, the squared norm of the decoder's Jacobian at the
    code).  ``embedding_weight`` is beta (default 1e-4) and ``reg_weight``
    lambda (default 1e-7): the authors' MNIST values for RAE-L2, and
    Pythae's defaults for both variants.  Samples come from the ex-post
    density (``aelab sample RUN``: the ``expost`` sampler)."""

    kind: Literal["rae"] = "rae"
    regularization: Literal["l2", "gp"] = "l2"
    embedding_weight: float = Field(default=1e-4, ge=0.0, allow_inf_nan=False,
                                    description="beta: the weight of L_z = 1/2 ||z||^2")
    reg_weight: float = Field(default=1e-7, ge=0.0, allow_inf_nan=False,
                              description="lambda: the weight of the decoder regularizer L_REG")

    def describe(self, model_info: dict) -> str:
        variant = "RAE-L2" if self.regularization == "l2" else "RAE-GP"
        return (f"{super().describe(model_info)}, {variant} lambda {self.reg_weight:g}, "
                f"beta {self.embedding_weight:g}")


SPEC = RAESpec
