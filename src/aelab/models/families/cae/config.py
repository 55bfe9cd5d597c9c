"""``kind: cae``: the contractive autoencoder (Rifai, Vincent, Muller, Glorot
& Bengio 2011)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ....spec_base import AutoencoderSpecBase, LayerSpec


class CAESpec(AutoencoderSpecBase):
    """An autoencoder whose loss adds ``contraction`` (lambda) times the
    squared Frobenius norm of the encoder's Jacobian, ||J_f(x)||_F^2, per
    example.  The penalty is each code's derivative with respect to its own
    input, so the encoder has no batch normalization: in training that ties
    each code to the whole batch's statistics."""

    kind: Literal["cae"] = "cae"
    contraction: float = Field(default=0.1, ge=0.0, allow_inf_nan=False,
                               description="lambda: the weight of ||J_f(x)||_F^2")

    @field_validator("encoder")
    @classmethod
    def _per_example(cls, layers: list[LayerSpec]) -> list[LayerSpec]:
        coupled = next((i for i, layer in enumerate(layers) if layer.type == "batchnorm"), None)
        if coupled is not None:
            raise ValueError(f"layer {coupled} (batchnorm): expected no batch normalization in a contractive "
                             f"encoder (its Jacobian is per example; batchnorm in training couples a batch's examples)")
        return layers

    def describe(self, model_info: dict) -> str:
        return f"{super().describe(model_info)}, contraction {self.contraction:g}"


SPEC = CAESpec
