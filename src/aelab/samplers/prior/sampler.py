"""The ``prior`` sampler: N(0, I) codes, the prior every ``generative``
family samples from -- decoding them gives exactly ``model.sample(n)``
with the same generator."""
from __future__ import annotations

from ...densities import Gaussian
from ...models.family import DECODE, GENERATIVE
from .. import Fitted, Sampler


class PriorSampler(Sampler):
    name = "prior"
    description = "the model's prior N(0, I) (a generative family's own sample())"
    needs = frozenset({DECODE, GENERATIVE})

    def fit(self, spec, model, codes, seed):
        return Fitted(Gaussian.standard(int(model.latent_dim)), {"distribution": "N(0, I)"})


SAMPLER = PriorSampler()
