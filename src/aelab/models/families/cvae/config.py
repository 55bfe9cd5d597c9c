"""``kind: cvae``: the conditional VAE (Sohn, Lee & Yan 2015)."""
from __future__ import annotations

from typing import Literal

from ..vae.config import VAESpec


class CVAESpec(VAESpec):
    """A VAE whose encoder q(z|x, y) and decoder p(x|z, y) both see the
    class label, one-hot (the number of classes comes from the data).  It
    adds no fields of its own: the label is an input, not a setting."""

    kind: Literal["cvae"] = "cvae"


SPEC = CVAESpec
