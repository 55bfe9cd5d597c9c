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

from ...densities import Mixture
from ..gmm.sampler import GMMSampler

COMPONENTS = 10     # k of the paper (Sec. 4.1)
MAX_ITER = 2000     # the authors' code
TOL = 1e-3


def fit_expost(codes: np.ndarray, components: int = COMPONENTS, seed: int = 0) -> Mixture:
    """The paper's ex-post GMM of ``codes`` (N, d): full covariances, up to
    2,000 EM iterations to tol 1e-3, ``random_state=seed``."""
    return Mixture.fit(codes, components, seed, MAX_ITER, TOL)


class ExPostSampler(GMMSampler):
    name = "expost"
    description = "the ex-post density of Ghosh et al. 2020: a 10-component full GMM of the training codes"
    max_iter, tol = MAX_ITER, TOL
    distribution = ("ex-post density (Ghosh et al. 2020, Sec. 4.1): Gaussian mixture of the training codes "
                    f"(full covariances, up to {MAX_ITER} EM iterations)")


SAMPLER = ExPostSampler()
