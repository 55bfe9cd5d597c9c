"""``kind: cgan``: the conditional GAN (Mirza & Osindero 2014)."""
from __future__ import annotations

from typing import Literal

from ..gan.config import GANSpec


class CGANSpec(GANSpec):
    """A GAN whose generator G(z, y) and discriminator D(x, y) both see the
    class label, one-hot (the number of classes comes from the data).  The
    networks are declared as for ``kind: gan``; the label is an input, not a
    setting, so the spec adds no fields."""

    kind: Literal["cgan"] = "cgan"

    def describe(self, model_info: dict) -> str:
        return "c" + super().describe(model_info)


SPEC = CGANSpec
