"""The ``expost`` sampler: the ex-post density estimation of Ghosh,
Sajjadi, Vergari, Black & Schoelkopf (2020, "From Variational to
Deterministic Autoencoders", Sec. 4.1) -- the sampler a regularized
autoencoder (``kind: rae``) is documented with and defaults to.

A deterministic autoencoder has no prior; after training, a density
q_delta(z) is fitted to the training codes {E(x)} and samples are D(z),
z ~ q_delta.  The paper's q_delta is a Gaussian mixture of k = 10
components; as the authors' code (``mixture.GaussianMixture(n_components=
10, covariance_type='full', max_iter=2000, tol=1e-3)``), the covariances are
full and EM runs for up to 2,000 iterations -- the one difference from the
``gmm`` sampler (scikit-learn's default of 100, as Pythae's).  It serves
every model that embeds and decodes; the paper applies it to VAEs too.
"""
from __future__ import annotations

import numpy as np
import torch

from ...densities import Mixture
from ...models.family import DECODE, EMBED
from .. import Fitted, Sampler, SamplerError

COMPONENTS = 10     # k of the paper (Sec. 4.1)
MAX_ITER = 2000     # the authors' code
TOL = 1e-3


def fit_expost(codes: np.ndarray, components: int = COMPONENTS, seed: int = 0) -> Mixture:
    """The paper's ex-post GMM of ``codes`` (N, d): full covariances, up to
    2,000 EM iterations, ``random_state=seed``."""
    from sklearn.mixture import GaussianMixture
    gmm = GaussianMixture(n_components=components, covariance_type="full", max_iter=MAX_ITER, tol=TOL,
                          random_state=seed)
    gmm.fit(np.asarray(codes, dtype=np.float64))
    chols = np.linalg.cholesky(gmm.covariances_)  # reg_covar keeps every covariance positive definite
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return Mixture(as_t(gmm.weights_), as_t(gmm.means_), as_t(chols), bool(gmm.converged_), int(gmm.n_iter_))


def mixture_facts(m: Mixture, codes: np.ndarray) -> dict:
    """What sampler.json records of a fitted mixture."""
    return {"training_codes": len(codes), "components": len(m.weights),
            "weights": [round(float(w), 6) for w in m.weights], "means_shape": list(m.means.shape),
            "covariances_shape": list(m.chols.shape), "converged": m.converged, "iterations": m.iterations}


class ExPostSampler(Sampler):
    name = "expost"
    description = "the ex-post density of Ghosh et al. 2020: a 10-component full GMM of the training codes"
    needs = frozenset({DECODE, EMBED})
    fits_codes = True

    def fit(self, spec, model, codes, seed):
        if spec.components > len(codes):
            raise SamplerError(f"--components {spec.components}: more components than the {len(codes)} "
                               f"training codes; expected at most {len(codes)}")
        m = fit_expost(codes, spec.components, seed)
        return Fitted(m, {"distribution": "ex-post density (Ghosh et al. 2020, Sec. 4.1): Gaussian mixture of "
                                          f"the training codes (full covariances, up to {MAX_ITER} EM iterations)",
                          **mixture_facts(m, codes)})


SAMPLER = ExPostSampler()
