"""``kind: ae``: a deterministic autoencoder."""
from __future__ import annotations

from typing import Literal

from ....spec_base import AutoencoderSpecBase


class AESpec(AutoencoderSpecBase):
    """An encoder, a ``latent_dim`` code (``latent_activation``) and a
    decoder back to the input (``mirror``: the encoder reversed)."""

    kind: Literal["ae"] = "ae"


SPEC = AESpec
