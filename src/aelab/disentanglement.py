"""Disentanglement metrics: how well each code dimension captures one
ground-truth factor of variation.  They need a data set that carries its
factors (``shapes``), and work for the codes of any model that embeds.

Every function is pure: ``codes`` ``(N, D)`` floats and ``factors`` ``(N, K)``
integer value indices in, python floats out, the same for the same seed.
All three follow the reference implementations of disentanglement_lib
(Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations"), with one difference each,
documented where it is made: they score a fixed set of codes whose factors
are known, where disentanglement_lib draws fresh images from the simulator.

- :func:`mig`: the mutual information gap (Chen, Li, Grosse & Duvenaud 2018,
  "Isolating Sources of Disentanglement in VAEs", Sec. 5).
- :func:`factor_vae_score`: the FactorVAE metric (Kim & Mnih 2018,
  "Disentangling by Factorising", Sec. 4).
- :func:`dci`: disentanglement, completeness and informativeness (Eastwood
  & Williams 2018, "A Framework for the Quantitative Evaluation of
  Disentangled Representations", ICLR).

A factor that takes a single value in the codes given carries no
information and is left out of every average (it has zero entropy); a score
with no factor left is ``nan``.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import entropy as _entropy
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import mutual_info_score

NAN = float("nan")
BINS = 20                 # MIG's histogram bins per code dimension (disentanglement_lib)
VOTE_BATCH = 64           # L: codes sharing one fixed factor value per vote (disentanglement_lib)
TRAIN_VOTES, EVAL_VOTES = 10_000, 5_000   # votes that fit and that score the classifier (idem)
FOREST = 25               # trees per DCI predictor
WIDE = 32                 # wider codes: each DCI split considers sqrt(D) dimensions, not all


def _check(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` as (N, D) float64 and ``factors`` as (N, K) int64, same N."""
    z = np.asarray(codes, dtype=np.float64)
    f = np.asarray(factors)
    z = z.reshape(len(z), -1)
    if f.ndim != 2 or len(f) != len(z):
        raise ValueError(f"factors must be (N, K) for {len(z)} codes, got shape {f.shape}")
    return z, f.astype(np.int64)


def _varying(f: np.ndarray) -> np.ndarray:
    """Indices of the factors that take more than one value."""
    return np.array([k for k in range(f.shape[1]) if len(np.unique(f[:, k])) > 1], dtype=np.int64)


# -------------------------------------------------------------------- MIG


def discretize(codes, bins: int = BINS) -> np.ndarray:
    """Each code dimension cut into ``bins`` equal-width bins over its own
    range (disentanglement_lib's ``make_discretizer``: ``np.digitize``
    against ``np.histogram``'s edges less the last), as (N, D) bin indices."""
    z = np.asarray(codes, dtype=np.float64)
    z = z.reshape(len(z), -1)
    return np.stack([np.digitize(z[:, j], np.histogram(z[:, j], bins)[1][:-1]) for j in range(z.shape[1])], 1)


def mutual_information(codes, factors, bins: int = BINS) -> np.ndarray:
    """``I(z_j; v_k)`` in nats, (D, K), between the discretized code
    dimensions and the factors (plug-in estimate, sklearn's
    ``mutual_info_score`` on the contingency table)."""
    z, f = _check(codes, factors)
    d = discretize(z, bins)
    return np.array([[mutual_info_score(f[:, k], d[:, j]) for k in range(f.shape[1])] for j in range(d.shape[1])])


def mig(codes, factors, bins: int = BINS) -> float:
    """The mutual information gap, Chen et al. 2018, Sec. 5:

        MIG = 1/K  sum_k  ( I(z_{j(k)}; v_k) - max_{j != j(k)} I(z_j; v_k) ) / H(v_k)

    with ``j(k) = argmax_j I(z_j; v_k)``: for each factor, the gap between
    the two code dimensions that know most about it, as a share of all
    there is to know (its entropy).  In [0, 1]; 1 when each factor lives in
    exactly one dimension.  The paper estimates I(z_j; v_k) from q(z|x) over
    the whole data set; this is disentanglement_lib's estimate from codes
    discretized into ``bins`` bins, as the brief and most comparisons use.
    Needs at least two code dimensions."""
    z, f = _check(codes, factors)
    if z.shape[1] < 2:
        return NAN
    keep = _varying(f)
    if not len(keep):
        return NAN
    m = mutual_information(z, f[:, keep], bins)  # (D, K)
    top = np.sort(m, axis=0)[::-1]
    h = np.array([mutual_info_score(f[:, k], f[:, k]) for k in keep])  # H(v_k) = I(v_k; v_k)
    return float(np.mean((top[0] - top[1]) / h))


# ---------------------------------------------------------- FactorVAE metric


def active_dims(codes, prune: float = 0.0) -> np.ndarray:
    """The code dimensions whose standard deviation over the codes exceeds
    ``prune``.  Kim & Mnih prune the dimensions collapsed to the prior, and
    disentanglement_lib those of std below 0.05 -- a test that means
    "collapsed" only for a VAE's posterior means, in N(0, 1) units.  For the
    codes of any model the default keeps every dimension that varies at all
    (a constant one cannot be normalised): a collapsed dimension's
    normalised batch variance stays near 1, so it can take votes only from
    factors that no dimension captures.  Pass 0.05 for disentanglement_lib's
    rule on a VAE's means."""
    std = np.asarray(codes, dtype=np.float64).std(axis=0)
    return np.flatnonzero(std > max(prune, 0.0))


def _groups(f: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Per factor: the codes' positions sorted by its value, its distinct
    values (ascending), where each value's run starts in that order and how
    long it is, so that a code sharing a given value is drawn in O(1)."""
    out = []
    for k in range(f.shape[1]):
        order = np.argsort(f[:, k], kind="stable")
        values, start, count = np.unique(f[order, k], return_index=True, return_counts=True)
        out.append((order, values, start, count))
    return out


def factor_votes(codes, factors, n_votes: int, rng: np.random.Generator, batch: int = VOTE_BATCH,
                 prune: float = 0.0) -> np.ndarray:
    """The (K, D) vote counts of Kim & Mnih 2018, Sec. 4: each vote picks a
    factor k uniformly and a value of it (that of a code drawn uniformly),
    takes ``batch`` codes holding that value, divides each dimension by its
    standard deviation over all codes, and votes (k, the active dimension of
    least variance within the batch).  The batch is drawn with replacement
    from the given codes holding the value (disentanglement_lib renders
    fresh images with it fixed instead).  Chunked so memory stays bounded."""
    z, f = _check(codes, factors)
    active = active_dims(z, prune)
    votes = np.zeros((f.shape[1], z.shape[1]), dtype=np.int64)
    if not len(active):
        return votes
    scaled = z[:, active] / z[:, active].std(axis=0, ddof=1)
    groups = _groups(f)
    for lo in range(0, n_votes, 1000):
        n = min(1000, n_votes - lo)
        k = rng.integers(f.shape[1], size=n)
        anchor = rng.integers(len(z), size=n)
        members = np.empty((n, batch), dtype=np.int64)
        for factor, (order, values, start, count) in enumerate(groups):
            rows = np.flatnonzero(k == factor)
            if not len(rows):
                continue
            run = np.searchsorted(values, f[anchor[rows], factor])
            offset = rng.integers(0, count[run][:, None], size=(len(rows), batch))
            members[rows] = order[start[run][:, None] + offset]
        least = np.argmin(scaled[members].var(axis=1, ddof=1), axis=1)
        np.add.at(votes, (k, active[least]), 1)
    return votes


def majority_accuracy(train_votes: np.ndarray, eval_votes: np.ndarray) -> float:
    """Kim & Mnih's majority-vote classifier: each dimension predicts the
    factor it got most training votes for (ties: the lower factor); its
    accuracy is the share of evaluation votes it gets right."""
    total = eval_votes.sum()
    if total == 0:
        return NAN
    classifier = np.argmax(train_votes, axis=0)
    return float(eval_votes[classifier, np.arange(eval_votes.shape[1])].sum() / total)


def factor_vae_score(codes, factors, seed: int = 0, batch: int = VOTE_BATCH, train_votes: int = TRAIN_VOTES,
                     eval_votes: int = EVAL_VOTES, prune: float = 0.0) -> float:
    """The FactorVAE disentanglement metric (Kim & Mnih 2018, Sec. 4): the
    evaluation accuracy of the majority-vote classifier from factor to the
    code dimension of least normalised variance.  1 when fixing any factor
    always stills one dimension of its own; chance is 1/K.  Factors with a
    single value are left out (fixing them fixes nothing); 0 when every
    dimension collapsed, as disentanglement_lib."""
    z, f = _check(codes, factors)
    keep = _varying(f)
    if not len(keep):
        return NAN
    if not len(active_dims(z, prune)):
        return 0.0
    rng = np.random.default_rng(seed)
    fit = factor_votes(z, f[:, keep], train_votes, rng, batch, prune)
    return majority_accuracy(fit, factor_votes(z, f[:, keep], eval_votes, rng, batch, prune))


# -------------------------------------------------------------------- DCI


def importance_matrix(codes, factors, codes_test, factors_test, seed: int = 0) -> tuple[np.ndarray, float]:
    """R (D, K): how much code dimension i matters for predicting factor j,
    and the predictors' mean test accuracy.  One random-forest classifier
    per factor (Eastwood & Williams 2018 use lasso and random forests;
    disentanglement_lib gradient-boosted trees, which took 19 s for one
    40-valued factor on 1,333 codes on one core here, against 0.2 s for this
    forest of 25 trees); R_ij = the forest's impurity-based importance of
    dimension i for factor j (Breiman's mean decrease in impurity, summing
    to 1 per factor).  Every split sees every dimension (for codes of at
    most :data:`WIDE` dimensions), so a dimension that is not informative is
    never used for want of the one that is; a wider embedding (a
    classifier's features) is split on sqrt(D) of them at a time, or scoring
    it would take minutes.  ``min_samples_leaf=5`` keeps the trees from
    splitting on noise to fit single codes."""
    z, f = _check(codes, factors)
    zt, ft = _check(codes_test, factors_test)
    r = np.zeros((z.shape[1], f.shape[1]))
    acc = []
    for j in range(f.shape[1]):
        forest = RandomForestClassifier(n_estimators=FOREST, min_samples_leaf=5,
                                        max_features=None if z.shape[1] <= WIDE else "sqrt",
                                        random_state=seed, n_jobs=1)
        with warnings.catch_warnings():  # "more classes than half the samples": valid on few codes
            warnings.simplefilter("ignore", UserWarning)
            forest.fit(z, f[:, j])
        r[:, j] = forest.feature_importances_
        acc.append(float(np.mean(forest.predict(zt) == ft[:, j])))
    return r, float(np.mean(acc))


def disentanglement(r: np.ndarray) -> float:
    """Eastwood & Williams' disentanglement: D = sum_i rho_i (1 - H_K(P_i.)),
    P_ij = R_ij / sum_k R_ik, rho_i = sum_j R_ij / sum_ij R_ij: each
    dimension's importance concentrated on one factor, weighted by how much
    the dimension matters at all."""
    r = np.asarray(r, dtype=np.float64)
    if r.shape[1] < 2:
        return NAN
    if r.sum() == 0:
        r = np.ones_like(r)
    per_dim = 1.0 - _entropy(r.T + 1e-11, base=r.shape[1])  # entropy over factors, per dimension
    return float(np.sum(per_dim * r.sum(axis=1) / r.sum()))


def completeness(r: np.ndarray) -> float:
    """Eastwood & Williams' completeness: C = sum_j w_j (1 - H_D(P~_.j)),
    P~_ij = R_ij / sum_i R_ij: each factor captured by one dimension,
    weighted by its share of the total importance (uniform in practice:
    each forest's importances sum to 1)."""
    r = np.asarray(r, dtype=np.float64)
    if r.shape[0] < 2:
        return NAN
    if r.sum() == 0:
        r = np.ones_like(r)
    per_factor = 1.0 - _entropy(r + 1e-11, base=r.shape[0])  # entropy over dimensions, per factor
    return float(np.sum(per_factor * r.sum(axis=0) / r.sum()))


def dci(codes, factors, seed: int = 0, test_share: float = 1 / 3) -> dict[str, float]:
    """D, C and I of Eastwood & Williams 2018 on ``codes``: a seeded split
    (``test_share`` held out) fits the per-factor predictors and scores them.
    ``dci_informativeness`` is the held-out accuracy (higher is better, as
    disentanglement_lib reports it; the paper reports the error)."""
    z, f = _check(codes, factors)
    keep = _varying(f)
    n_test = int(round(len(z) * test_share))
    if not len(keep) or n_test < 1 or len(z) - n_test < 2:
        return {"dci_disentanglement": NAN, "dci_completeness": NAN, "dci_informativeness": NAN}
    perm = np.random.default_rng(seed).permutation(len(z))
    te, tr = perm[:n_test], perm[n_test:]
    r, acc = importance_matrix(z[tr], f[tr][:, keep], z[te], f[te][:, keep], seed)
    return {"dci_disentanglement": disentanglement(r), "dci_completeness": completeness(r),
            "dci_informativeness": acc}


# ---------------------------------------------------------------- together


def disentanglement_metrics(codes, factors, seed: int = 0) -> dict[str, float]:
    """Every metric of this module, by its metrics.json key
    (:data:`aelab.models.family.DISENTANGLEMENT_METRICS`)."""
    return {"mig": mig(codes, factors), "factorvae_score": factor_vae_score(codes, factors, seed)} \
        | dci(codes, factors, seed)
