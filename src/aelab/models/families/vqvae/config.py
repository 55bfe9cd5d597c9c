"""``kind: vqvae``: the vector-quantised variational autoencoder (van den
Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation
Learning", sec. 3 and eq. 3; the EMA codebook of its Appendix A.1)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ....spec_base import MAX_SIZE, AutoencoderSpecBase


class VQVAESpec(AutoencoderSpecBase):
    """An autoencoder whose code z_e(x) is cut into code vectors of
    ``embedding_dim`` (D) values, each replaced by its nearest of
    ``codebook_size`` (K) codebook vectors before the decoder sees it.

    ``code_layout: flat`` (the default, any encoder): the dense head's
    ``latent_dim`` values are latent_dim / D consecutive vectors (D left
    empty: one vector of latent_dim).  ``code_layout: spatial`` (an encoder
    that ends in an image (C, h, w), as the paper's): a 1x1 convolution
    maps it to D channels and every one of the h*w positions is a vector;
    ``latent_dim`` must then be D*h*w (the build says the number).

    ``codebook: loss`` learns the codebook from the codebook term
    ||sg[z_e] - e||^2 of eq. 3; ``codebook: ema`` replaces that term by
    exponential moving averages (Appendix A.1) of ``decay`` (gamma) with
    Laplace smoothing ``epsilon`` of the counts (as Sonnet's
    VectorQuantizerEMA).  ``commitment_cost`` is eq. 3's beta."""

    kind: Literal["vqvae"] = "vqvae"
    codebook_size: int = Field(default=512, ge=1, le=MAX_SIZE, description="K: the number of codebook vectors")
    embedding_dim: int | None = Field(default=None, ge=1, le=MAX_SIZE,
                                      description="D: the values per code vector (empty: latent_dim, one vector)")
    code_layout: Literal["flat", "spatial"] = "flat"
    commitment_cost: float = Field(default=0.25, ge=0.0, allow_inf_nan=False,
                                   description="beta: the weight of the commitment loss ||z_e - sg[e]||^2")
    codebook: Literal["loss", "ema"] = "loss"
    decay: float = Field(default=0.99, gt=0.0, lt=1.0, description="gamma of the EMA codebook")
    epsilon: float = Field(default=1e-5, gt=0.0, allow_inf_nan=False,
                           description="the Laplace smoothing of the EMA cluster sizes")

    @field_validator("embedding_dim")
    @classmethod
    def _divides_the_code(cls, v: int | None, info: ValidationInfo) -> int | None:
        latent = info.data.get("latent_dim")
        if v is not None and latent is not None and latent % v:
            raise ValueError(f"the code of latent_dim {latent} is cut into vectors of embedding_dim values: "
                             f"expected a divisor of {latent}")
        return v

    @field_validator("code_layout")
    @classmethod
    def _spatial_needs_d(cls, v: str, info: ValidationInfo) -> str:
        if v == "spatial" and "embedding_dim" in info.data and info.data["embedding_dim"] is None:
            raise ValueError("spatial quantises each position's embedding_dim channels: expected embedding_dim too")
        return v

    def vector_dim(self) -> int:
        """D: the values of one code vector."""
        return self.embedding_dim or self.latent_dim

    def describe(self, model_info: dict) -> str:
        d = self.vector_dim()
        ema = f" (ema {self.decay:g})" if self.codebook == "ema" else ""
        return (f"{super().describe(model_info)}, {self.latent_dim // d} x {d}-D {self.code_layout} codes, "
                f"codebook {self.codebook_size}{ema}, commitment {self.commitment_cost:g}")


SPEC = VQVAESpec
