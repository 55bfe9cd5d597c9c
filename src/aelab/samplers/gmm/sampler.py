"""The ``gmm`` sampler: a Gaussian mixture fitted to the training set's
codes (scikit-learn's ``GaussianMixture``, full covariances, seeded), as
Pythae's GMM sampler does for a VAE's ``mu``.  The ``expost`` sampler is
the same with the RAE paper's EM settings."""
from __future__ import annotations

import numpy as np

from ...densities import Mixture
from ...models.family import DECODE, EMBED
from .. import Fitted, Sampler, SamplerError


def mixture_facts(m: Mixture, codes: np.ndarray) -> dict:
    """What sampler.json records of a fitted mixture."""
    return {"training_codes": len(codes), "components": len(m.weights),
            "weights": [round(float(w), 6) for w in m.weights], "weights_shape": list(m.weights.shape),
            "means_shape": list(m.means.shape), "covariances_shape": list(m.chols.shape),
            "converged": m.converged, "iterations": m.iterations}


class GMMSampler(Sampler):
    name = "gmm"
    description = "a full-covariance Gaussian mixture fitted to the training codes"
    needs = frozenset({DECODE, EMBED})
    fits_codes = True
    max_iter, tol = 100, 1e-3  # scikit-learn's EM defaults
    distribution = "Gaussian mixture of the training codes (sklearn GaussianMixture, full)"

    def fit(self, spec, model, codes, seed):
        if spec.components > len(codes):
            raise SamplerError(f"--components {spec.components}: more components than the {len(codes)} "
                               f"training codes; expected at most {len(codes)}")
        m = Mixture.fit(codes, spec.components, seed, self.max_iter, self.tol)
        return Fitted(m, {"distribution": self.distribution, **mixture_facts(m, codes)})


SAMPLER = GMMSampler()
