"""The ``prior`` sampler: the model's own prior, so decoding its codes gives
exactly ``model.sample(n)`` with the same generator.

A model with a prior of its own declares ``prior_codes(n, generator)`` (the
codes its ``sample`` decodes; e.g. the VampPrior of ``kind: vamp``, a
mixture over learned pseudo-inputs) and may describe it in
``prior_description``; every other ``generative`` family samples N(0, s^2 I)
with its ``prior_scale`` s (a WAE may set one; 1 for the others)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...densities import Gaussian
from ...models.family import DECODE, GENERATIVE
from .. import Fitted, Sampler


@dataclass
class ModelPrior:
    """The :class:`~aelab.samplers.Density` of a model's own ``prior_codes``."""

    model: torch.nn.Module

    @property
    def dim(self) -> int:
        return int(self.model.latent_dim)

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.model.prior_codes(n, generator=generator).float().cpu()

    def facts(self) -> dict:
        about = getattr(self.model, "prior_description", None)
        return {"distribution": about() if callable(about) else f"the {self.model.kind} model's own prior",
                "dim": self.dim}


class PriorSampler(Sampler):
    name = "prior"
    description = "the model's own prior (a generative family's sample(): N(0, I) unless it has its own)"
    needs = frozenset({DECODE, GENERATIVE})

    def fit(self, spec, model, codes, seed):
        """The model's ``prior_codes`` where it has them; else N(0, s^2 I)
        with its prior scale ``s``, drawn as ``model.sample`` draws it."""
        if callable(getattr(model, "prior_codes", None)):
            return ModelPrior(model)
        d, s = int(model.latent_dim), float(getattr(model, "prior_scale", 1.0))
        prior = Gaussian.standard(d) if s == 1.0 else Gaussian(torch.zeros(d), s * torch.eye(d))
        return Fitted(prior, {"distribution": "N(0, I)" if s == 1.0 else f"N(0, {s:g}^2 I)"})


SAMPLER = PriorSampler()
