"""Metrics for autoencoders: reconstruction error, the VAE's KL term, and the
quality of a latent space (clustering, neighbourhoods, class separability).

Every function is pure: numpy arrays in, python floats (or an array) out.
Arrays are ``(N, ...)``; anything past the first axis is flattened per sample.

Metrics that are O(n^2) in the number of codes (silhouette, trustworthiness,
the k-NN queries) run on a fixed-seed subsample of at most ``max_samples``
codes and k-means is fit on at most ``10 * max_samples``, so evaluating a
whole data set costs seconds however large it is.  A metric that is undefined for
the input (one cluster, all codes identical, too few samples) is ``nan``;
degenerate but valid input never raises.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.manifold import trustworthiness as _sk_trustworthiness
from sklearn.neighbors import KNeighborsClassifier

QUALITY_KEYS = ("silhouette", "nmi", "ari", "cluster_acc", "knn_acc", "trustworthiness")
NAN = float("nan")


def _flat(a) -> np.ndarray:
    """``(N, ...)`` -> ``(N, D)`` float64, so every metric sees one row per sample."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1) if a.ndim != 2 else a


def _pair(x, x_hat) -> tuple[np.ndarray, np.ndarray]:
    """Flatten a target and its reconstruction; refuse shapes that would broadcast."""
    x, x_hat = _flat(x), _flat(x_hat)
    if x.shape != x_hat.shape:
        raise ValueError(f"x has shape {x.shape} per sample-flattened, x_hat has {x_hat.shape}")
    return x, x_hat


# ------------------------------------------------------------ reconstruction


def recon_mse(x, x_hat) -> float:
    """Mean squared error over all elements (torch ``mse_loss``, reduction='mean')."""
    x, x_hat = _pair(x, x_hat)
    return float(np.mean((x - x_hat) ** 2)) if x.size else NAN


def recon_mae(x, x_hat) -> float:
    """Mean absolute error over all elements (torch ``l1_loss``, reduction='mean')."""
    x, x_hat = _pair(x, x_hat)
    return float(np.mean(np.abs(x - x_hat))) if x.size else NAN


def recon_bce(x, x_hat, eps: float = 1e-7) -> float:
    """Mean elementwise binary cross-entropy ``-[x log p + (1-x) log(1-p)]``.

    ``p = x_hat`` clipped to ``[eps, 1-eps]`` so a saturated decoder gives a
    large finite loss instead of ``inf``.  ``x`` is not checked to lie in
    [0, 1]: for standardized targets the formula is evaluated as is, as Keras'
    ``binary_crossentropy`` does, so numbers stay comparable with Keras runs.
    """
    x, x_hat = _pair(x, x_hat)
    if not x.size:
        return NAN
    p = np.clip(x_hat, eps, 1.0 - eps)
    return float(np.mean(-(x * np.log(p) + (1.0 - x) * np.log1p(-p))))


def gaussian_kl(mu, logvar) -> np.ndarray:
    """Per-sample ``KL(N(mu, exp(logvar)) || N(0, I))``, summed over latent dims.

    Closed form from Kingma & Welling 2014, "Auto-Encoding Variational Bayes",
    appendix B:  ``-1/2 * sum(1 + logvar - mu^2 - exp(logvar))``.
    Returns shape ``(N,)``.
    """
    mu, logvar = _pair(mu, logvar)
    return -0.5 * np.sum(1.0 + logvar - mu**2 - np.exp(logvar), axis=1)


# ---------------------------------------------------------------- sampling


def subsample(n: int, max_samples: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_samples`` out of ``range(n)``.

    Drawn without replacement by ``np.random.default_rng(seed)``, so the same
    (n, max_samples, seed) always picks the same samples and a metric computed
    on them is reproducible.  All indices when ``n <= max_samples``.
    """
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1, got {max_samples}")
    if n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_samples, replace=False))


# -------------------------------------------------------------- clustering


def _kmeans(z: np.ndarray, k: int, seed: int) -> KMeans:
    """Fit k-means; ``k`` is clipped to the number of samples.

    sklearn's warning that fewer distinct clusters than ``k`` were found is
    silenced: such input (e.g. identical codes) is valid, and the metrics
    computed from the labels report it (silhouette becomes nan).
    """
    km = KMeans(n_clusters=max(1, min(int(k), len(z))), n_init=10, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return km.fit(z)


def kmeans_labels(z, k: int, seed: int) -> np.ndarray:
    """k-means cluster labels of the codes (``KMeans(k, n_init=10, random_state=seed)``)."""
    return _kmeans(_flat(z), k, seed).labels_


def silhouette(z, labels, max_samples: int = 2000, seed: int = 0) -> float:
    """Mean silhouette coefficient (Rousseeuw 1987) of ``labels`` on the codes.

    Computed by sklearn on a ``subsample`` of at most ``max_samples`` codes
    (O(n^2) distances).  ``nan`` when the subsample holds fewer than 2 or more
    than n-1 clusters, or all its codes are identical (every distance is 0,
    so the score would be 0/0).
    """
    z, labels = _flat(z), np.asarray(labels)
    idx = subsample(len(z), max_samples, seed)
    z, labels = z[idx], labels[idx]
    if not 2 <= len(np.unique(labels)) <= len(z) - 1 or np.all(z == z[0]):
        return NAN
    return float(skm.silhouette_score(z, labels))


def nmi(y_true, y_pred) -> float:
    """Normalized mutual information (sklearn, arithmetic normalisation)."""
    return float(skm.normalized_mutual_info_score(y_true, y_pred))


def ari(y_true, y_pred) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985, via sklearn)."""
    return float(skm.adjusted_rand_score(y_true, y_pred))


def cluster_acc(y_true, y_pred) -> float:
    """Unsupervised clustering accuracy: the fraction of samples labelled right
    under the best one-to-one map from clusters to classes.

    The map maximises the matched counts of the cluster x class contingency
    table, found with the Hungarian algorithm (``linear_sum_assignment``; as
    in Xie et al. 2016, "Unsupervised Deep Embedding for Clustering", eq. 10).
    The table may be rectangular: with more clusters than classes the extra
    clusters match nothing and count as wrong; with fewer, some classes do.
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels, y_pred has {y_pred.size}")
    if not y_true.size:
        return NAN
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y_true.size)


# ------------------------------------------------------------- neighbourhoods


def knn_acc(z_train, y_train, z_test, y_test, k: int = 5) -> float:
    """Accuracy on the test codes of a k-NN classifier fit on the train codes.

    A training-free measure of how well classes separate in the latent
    space.  ``k`` is clipped to the number of training codes.
    """
    z_train, z_test = _flat(z_train), _flat(z_test)
    if not len(z_train) or not len(z_test):
        return NAN
    clf = KNeighborsClassifier(n_neighbors=max(1, min(int(k), len(z_train))))
    return float(clf.fit(z_train, np.asarray(y_train)).score(z_test, np.asarray(y_test)))


def trustworthiness(x, z, k: int = 5, max_samples: int = 2000, seed: int = 0) -> float:
    """How well the codes keep the inputs' neighbourhoods (Venna & Kaski 2001).

    sklearn's ``trustworthiness`` on a ``subsample`` of at most ``max_samples``
    pairs (x flattened per sample), penalising codes whose k nearest latent
    neighbours are not near in input space.  ``k`` is clipped below n/2, as
    the score's normalisation requires; ``nan`` when n < 3 leaves no valid k.
    """
    x, z = np.asarray(x), np.asarray(z)
    if len(x) != len(z):
        raise ValueError(f"x has {len(x)} samples, z has {len(z)}")
    idx = subsample(len(z), max_samples, seed)  # before flattening: x may be large
    k = min(int(k), (len(idx) - 1) // 2)
    if k < 1:
        return NAN
    return float(_sk_trustworthiness(_flat(x[idx]), _flat(z[idx]), n_neighbors=k))


# ----------------------------------------------------------------- summary


def latent_quality(
    z_train,
    y_train,
    z_test,
    y_test,
    x_test,
    *,
    num_classes: int | None,
    max_samples: int = 2000,
    knn_k: int = 5,
    trust_k: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """All latent-space metrics of one model, keyed by ``QUALITY_KEYS``.

    - k-means with ``num_classes`` clusters is fit on at most
      ``10 * max_samples`` test codes and then labels every test code;
    - ``silhouette`` scores those labels on the codes (subsampled);
    - ``nmi``, ``ari``, ``cluster_acc`` compare them with ``y_test``;
    - ``knn_acc``: k-NN fit on all train codes, scored on at most
      ``max_samples`` test codes (bounds the O(n_train * n_test) cost);
    - ``trustworthiness`` of ``x_test`` vs ``z_test`` (subsampled).

    Without labels (``y_test`` None) only the label-free metrics, silhouette
    and trustworthiness, are computed and the others are nan; the number of
    clusters must then be given: ``num_classes=None`` is inferred from
    ``y_test`` when present and raises ``ValueError`` when it is not (there
    is no sensible default).  ``knn_acc`` is nan when ``y_train`` is None,
    ``trustworthiness`` when ``x_test`` is None.  Codes holding NaN or inf
    (a diverged model) give nan for every metric instead of raising.
    """
    if num_classes is None:
        if y_test is None:
            raise ValueError("latent_quality needs num_classes when there are no labels")
        num_classes = len(np.unique(y_test))
    out = dict.fromkeys(QUALITY_KEYS, NAN)
    z_test = _flat(z_test)
    if not len(z_test) or not np.isfinite(z_test).all():
        return out
    fit = subsample(len(z_test), 10 * max_samples, seed)
    labels = _kmeans(z_test[fit], num_classes, seed).predict(z_test)
    out["silhouette"] = silhouette(z_test, labels, max_samples, seed)
    if x_test is not None:
        out["trustworthiness"] = trustworthiness(x_test, z_test, trust_k, max_samples, seed)
    if y_test is not None:
        y_test = np.asarray(y_test)
        out.update(nmi=nmi(y_test, labels), ari=ari(y_test, labels),
                   cluster_acc=cluster_acc(y_test, labels))
        if y_train is not None and z_train is not None:
            z_train = _flat(z_train)
            if np.isfinite(z_train).all():
                q = subsample(len(z_test), max_samples, seed)
                out["knn_acc"] = knn_acc(z_train, y_train, z_test[q], y_test[q], knn_k)
    return out
