"""The ``gaussian`` sampler: N(mean, cov) of the training set's codes."""
from __future__ import annotations

from ...densities import Gaussian
from ...models.family import DECODE, EMBED
from .. import Fitted, Sampler


class GaussianSampler(Sampler):
    name = "gaussian"
    description = "a full-covariance Gaussian fitted to the training codes"
    needs = frozenset({DECODE, EMBED})
    fits_codes = True

    def fit(self, spec, model, codes, seed):
        g = Gaussian.fit(codes)
        return Fitted(g, {"distribution": "N(mean, cov) of the training codes", "training_codes": len(codes),
                          "mean_shape": [g.dim], "covariance_shape": [g.dim, g.dim]})


SAMPLER = GaussianSampler()
