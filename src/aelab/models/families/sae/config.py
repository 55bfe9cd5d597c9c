"""``kind: sae``: the sparse autoencoder (Ng, CS294A lecture notes "Sparse
autoencoder"; an L1 activity penalty as the alternative)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ....spec_base import AutoencoderSpecBase

UNIT_INTERVAL = ("sigmoid", "softmax")  # the activations whose values lie in (0, 1)
# What a spec that leaves them out gets, by penalty: the code's activation and the weight
# (kl: the beta of Ng's notes; l1: measured on mnist-5k, 784-196-784 ReLU codes: 78% of entries off).
DEFAULTS = {"kl": {"latent_activation": "sigmoid", "sparsity_weight": 3.0},
            "l1": {"latent_activation": "relu", "sparsity_weight": 0.1}}


class SAESpec(AutoencoderSpecBase):
    """An autoencoder whose code is pushed to be sparse.  ``sparsity: kl``
    adds ``sparsity_weight`` (Ng's beta) times sum_j KL(rho || rho_hat_j),
    rho = ``sparsity_target`` and rho_hat_j the mean activation of code unit
    j over the batch; a KL between Bernoulli means needs activations in
    (0, 1), so the code's activation is a sigmoid (the default; softmax is
    accepted too) and beta 3 by default.  ``sparsity: l1`` adds
    ``sparsity_weight`` (lambda, default 0.1) times the batch mean of
    sum_j |z_j|, on ReLU codes by default (exact zeros); ``sparsity_target``
    is then unused."""

    kind: Literal["sae"] = "sae"
    sparsity: Literal["l1", "kl"] = "kl"
    sparsity_weight: float = Field(default=3.0, ge=0.0, allow_inf_nan=False,
                                   description="beta (kl, default 3) or lambda (l1, default 0.1): the penalty's weight")
    sparsity_target: float = Field(default=0.05, gt=0.0, lt=1.0,
                                   description="rho: the mean activation kl aims each code unit at")

    @model_validator(mode="before")
    @classmethod
    def _penalty_defaults(cls, v: Any) -> Any:
        """The code activation and weight of the chosen penalty, where the spec chooses none."""
        if isinstance(v, dict):
            v = {**DEFAULTS.get(v.get("sparsity", "kl"), {}), **v}
        return v

    @model_validator(mode="after")
    def _kl_needs_unit_codes(self) -> "SAESpec":
        if self.sparsity == "kl" and self.latent_activation not in UNIT_INTERVAL:
            raise ValueError(f"latent_activation: sparsity kl needs code activations in (0, 1), expected "
                             f"{' or '.join(UNIT_INTERVAL)}, got {self.latent_activation!r}")
        return self

    def describe(self, model_info: dict) -> str:
        target = f" (target {self.sparsity_target:g})" if self.sparsity == "kl" else ""
        return f"{super().describe(model_info)}, {self.sparsity} sparsity {self.sparsity_weight:g}{target}"


SPEC = SAESpec
