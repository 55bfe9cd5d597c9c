"""The parts of a spec that model families build on: the strict base model,
activations and the layer vocabulary, and the fields every family of layer
stacks shares.  It imports no family (the families import it), so
:mod:`aelab.spec` can assemble ``model`` from the registered families
without an import circle.
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Activation = Literal["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid", "softmax", "linear"]
MAX_SIZE = 2**31 - 1  # the largest layer size torch accepts


class Strict(BaseModel):
    """Unknown keys are refused; assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


LayerType = Literal[
    "dense", "conv2d", "maxpool", "upsample", "unpool", "conv-transpose2d",
    "flatten", "reshape", "dropout", "batchnorm",
]
_NEEDS = {"dense": "units", "conv2d": "filters", "conv-transpose2d": "filters", "reshape": "shape"}


class LayerSpec(Strict):
    """One layer.  ``activation`` left empty means the model's default for
    dense/conv layers and ``linear`` for the rest.  An int is shorthand for a
    dense layer of that many units."""

    type: LayerType
    units: int | None = Field(default=None, ge=1, le=MAX_SIZE)
    filters: int | None = Field(default=None, ge=1, le=MAX_SIZE)
    kernel: int = Field(default=3, ge=1, le=MAX_SIZE)
    stride: int = Field(default=1, ge=1, le=MAX_SIZE)
    padding: int | Literal["same"] = 0
    size: int = Field(default=2, ge=1, le=MAX_SIZE)
    shape: list[int] | None = None
    rate: float = Field(default=0.5, ge=0.0, lt=1.0)
    activation: Activation | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return {"type": "dense", "units": v}
        return v

    @model_validator(mode="after")
    def _required(self) -> "LayerSpec":
        need = _NEEDS.get(self.type)
        if need and getattr(self, need) is None:
            raise ValueError(f"a {self.type} layer needs '{need}'")
        if self.type == "reshape" and any(s < 1 for s in self.shape or []):
            raise ValueError(f"reshape shape must be positive, got {self.shape}")
        return self


class ModelSpecBase(Strict):
    """What every family declares: its ``kind`` (the registry key) and the
    ``encoder`` layer list (input -> the layer before the family's own head),
    with the default activation of its dense/conv layers."""

    kind: str
    encoder: list[LayerSpec] = Field(default_factory=list)
    activation: Activation = "relu"

    def describe(self, model_info: dict) -> str:
        """What was built, in one line (``aelab show``, report.md): plain
        facts about the spec, so describing a run needs no torch."""
        layers = ", ".join(_layer(layer) for layer in self.encoder) or "—"
        return f"{self.kind}, encoder [{layers}], {model_info.get('parameters', '?')} parameters"


def _layer(layer: LayerSpec) -> str:
    if layer.type == "dense":
        return str(layer.units)
    if layer.type in ("conv2d", "conv-transpose2d"):
        return f"{layer.type} {layer.filters}x{layer.kernel}"
    return layer.type


class AutoencoderSpecBase(ModelSpecBase):
    """An encoder, a ``latent_dim`` bottleneck and a decoder (``mirror``: the
    encoder's mirror image, or an explicit layer list) ending in
    ``output_activation``."""

    latent_dim: int = Field(default=2, ge=1, le=MAX_SIZE)
    latent_activation: Activation = "linear"
    decoder: Union[Literal["mirror"], list[LayerSpec]] = "mirror"
    output_activation: Activation = "sigmoid"

    def describe(self, model_info: dict) -> str:
        decoder = "mirror" if self.decoder == "mirror" else "explicit"
        return f"{super().describe(model_info)}, latent {self.latent_dim}, decoder {decoder}"
