"""The ``prior`` sampler: N(0, I) codes (scaled by the model's
``prior_scale`` where it has one), the prior every ``generative`` family samples from -- decoding them gives exactly ``model.sample(n)``
with the same generator."""
from __future__ import annotations

import torch

from ...densities import Gaussian
from ...models.family import DECODE, GENERATIVE
from .. import Fitted, Sampler


class PriorSampler(Sampler):
    name = "prior"
    description = "the model's prior N(0, I) (a generative family's own sample())"
    needs = frozenset({DECODE, GENERATIVE})

    def fit(self, spec, model, codes, seed):
        """N(0, s^2 I) with the model's own prior scale ``s`` (a WAE may set
        one; 1 for every other family), drawn as ``model.sample`` draws it."""
        d, s = int(model.latent_dim), float(getattr(model, "prior_scale", 1.0))
        prior = Gaussian.standard(d) if s == 1.0 else Gaussian(torch.zeros(d), s * torch.eye(d))
        return Fitted(prior, {"distribution": "N(0, I)" if s == 1.0 else f"N(0, {s:g}^2 I)"})


SAMPLER = PriorSampler()
