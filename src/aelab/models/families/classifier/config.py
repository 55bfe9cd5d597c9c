"""``kind: classifier``: the networks LSO optimizes against and judges with."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import ModelSpecBase


class ClassifierSpec(ModelSpecBase):
    """An encoder followed by ``num_classes`` logits (default: as many as the
    data's labels have classes)."""

    kind: Literal["classifier"] = "classifier"
    num_classes: int | None = Field(default=None, ge=2)

    def describe(self, model_info: dict) -> str:
        return f"{super().describe(model_info)}, classes {model_info.get('num_classes') or self.num_classes or '?'}"


SPEC = ClassifierSpec
