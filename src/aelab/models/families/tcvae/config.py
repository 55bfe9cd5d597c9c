"""``kind: tcvae``: the beta-TCVAE (Chen, Li, Grosse & Duvenaud 2018,
"Isolating Sources of Disentanglement in Variational Autoencoders")."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....spec_base import MAX_SIZE, AutoencoderSpecBase


class TCVAESpec(AutoencoderSpecBase):
    """A VAE (Gaussian code, N(0, I) prior) whose KL term is split as eq. 2
    of the paper into the index-code mutual information, the total
    correlation and the dimension-wise KL, weighted ``alpha``, ``beta`` and
    ``gamma`` (eq. 4; defaults 1, 6, 1: the beta-TCVAE penalizes only the
    total correlation more).  ``estimator`` is how q(z) is estimated from a
    minibatch: ``mws``, minibatch-weighted sampling (sec. 4, the paper's
    training estimator), or ``mss``, minibatch-stratified sampling (appendix
    C.2).  ``dataset_size`` is N, the number of training images both
    estimators weight by; left empty, a run fills in its training split's
    size and records it in config.yaml (under ``mws`` N only shifts the
    three estimates by constants, so the gradients are the same whatever N
    is; ``mss`` needs the true N).  An objective built outside a run from
    a spec without it uses the batch's own size."""

    kind: Literal["tcvae"] = "tcvae"
    alpha: float = Field(default=1.0, ge=0.0, allow_inf_nan=False, description="weight of the index-code MI")
    beta: float = Field(default=6.0, ge=0.0, allow_inf_nan=False, description="weight of the total correlation")
    gamma: float = Field(default=1.0, ge=0.0, allow_inf_nan=False, description="weight of the dimension-wise KL")
    estimator: Literal["mws", "mss"] = "mws"
    dataset_size: int | None = Field(default=None, ge=1, le=MAX_SIZE,
                                     description="N of the estimators; empty: the training split's size, filled in by the run")

    def describe(self, model_info: dict) -> str:
        return (f"{super().describe(model_info)}, MI {self.alpha:g}, TC {self.beta:g}, "
                f"dim-KL {self.gamma:g} ({self.estimator})")


SPEC = TCVAESpec
