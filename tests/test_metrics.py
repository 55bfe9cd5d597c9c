"""Oracle tests for aelab.metrics: each metric against torch, sklearn or a
value worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.neighbors import KNeighborsClassifier

from aelab import metrics as M

KEYS = {"silhouette", "nmi", "ari", "cluster_acc", "knn_acc", "trustworthiness"}


def blobs(n_per: int, k: int = 4, dim: int = 8, sep: float = 20.0, seed: int = 0):
    """``k`` unit-variance Gaussian blobs whose centres are ``sep`` apart along axes."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per)
    z = sep * np.eye(k, dim)[y] + rng.normal(size=(len(y), dim))
    perm = rng.permutation(len(y))
    return z[perm], y[perm]


# ------------------------------------------------------------ reconstruction


def test_recon_mse_mae_by_hand():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    x_hat = np.array([[1.0, 1.0], [2.0, 5.0]])
    assert M.recon_mse(x, x_hat) == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert M.recon_mae(x, x_hat) == pytest.approx((1 + 0 + 0 + 2) / 4)


def test_recon_matches_torch():
    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 4, 4)).astype(np.float32)
    x_hat = rng.uniform(0.01, 0.99, size=x.shape).astype(np.float32)
    tx, th = torch.from_numpy(x), torch.from_numpy(x_hat)
    assert M.recon_mse(x, x_hat) == pytest.approx(F.mse_loss(th, tx).item(), rel=1e-5)
    assert M.recon_mae(x, x_hat) == pytest.approx(F.l1_loss(th, tx).item(), rel=1e-5)
    assert M.recon_bce(x, x_hat) == pytest.approx(F.binary_cross_entropy(th, tx).item(), rel=1e-5)


def test_recon_flattens_per_sample_and_refuses_mismatch():
    x = np.zeros((3, 16))
    assert M.recon_mse(x, np.ones((3, 1, 4, 4))) == 1.0
    with pytest.raises(ValueError):
        M.recon_mse(x, np.ones((3, 8)))
    with pytest.raises(ValueError):  # would silently broadcast otherwise
        M.recon_mae(x, np.ones((1, 16)))


def test_recon_bce_by_hand_clipping_and_targets_outside_unit_interval():
    assert M.recon_bce(np.array([[1.0]]), np.array([[0.5]])) == pytest.approx(math.log(2))
    # x_hat = 0 is clipped to eps: finite, -log(eps)
    assert M.recon_bce(np.array([[1.0]]), np.array([[0.0]]), eps=1e-7) == pytest.approx(-math.log(1e-7))
    assert np.isfinite(M.recon_bce(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])))
    # standardized targets: formula evaluated as is (Keras behaviour), may be negative
    want = -(-1 * math.log(0.25) + 2 * math.log(0.75))
    assert M.recon_bce(np.array([[-1.0]]), np.array([[0.25]])) == pytest.approx(want)
    assert want < 0


def test_gaussian_kl_matches_torch():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(7, 5))
    logvar = rng.normal(size=(7, 5))
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    p = torch.distributions.Normal(torch.zeros(7, 5, dtype=torch.float64), 1.0)
    want = torch.distributions.kl_divergence(q, p).sum(-1).numpy()
    got = M.gaussian_kl(mu, logvar)
    assert got.shape == (7,)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_gaussian_kl_zero_at_prior_and_flattens_latent():
    np.testing.assert_allclose(M.gaussian_kl(np.zeros((3, 4)), np.zeros((3, 4))), 0.0)
    mu = np.ones((2, 2, 3))
    np.testing.assert_allclose(M.gaussian_kl(mu, np.zeros_like(mu)), [3.0, 3.0])  # 6 dims * 1/2


# ---------------------------------------------------------------- sampling


def test_subsample():
    np.testing.assert_array_equal(M.subsample(5, 10, 0), np.arange(5))
    np.testing.assert_array_equal(M.subsample(10, 10, 0), np.arange(10))
    idx = M.subsample(1000, 100, 3)
    assert len(idx) == 100 and len(np.unique(idx)) == 100
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < 1000
    np.testing.assert_array_equal(idx, M.subsample(1000, 100, 3))
    assert not np.array_equal(idx, M.subsample(1000, 100, 4))
    with pytest.raises(ValueError):
        M.subsample(10, 0, 0)


# -------------------------------------------------------------- clustering


def test_kmeans_labels_matches_sklearn():
    z, _ = blobs(30, k=3, sep=3.0)
    want = KMeans(n_clusters=3, n_init=10, random_state=5).fit_predict(z)
    np.testing.assert_array_equal(M.kmeans_labels(z, 3, 5), want)


def test_silhouette_nmi_ari_match_sklearn():
    z, y = blobs(25, k=3, sep=2.0, seed=2)
    pred = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(z)
    assert M.silhouette(z, y) == pytest.approx(skm.silhouette_score(z, y))
    assert M.nmi(y, pred) == pytest.approx(skm.normalized_mutual_info_score(y, pred))
    assert M.ari(y, pred) == pytest.approx(skm.adjusted_rand_score(y, pred))
    assert isinstance(M.nmi(y, pred), float) and isinstance(M.ari(y, pred), float)


def test_silhouette_subsamples_deterministically():
    z, y = blobs(100, k=3, sep=2.0, seed=3)
    idx = M.subsample(len(z), 60, 7)
    got = M.silhouette(z, y, max_samples=60, seed=7)
    assert got == pytest.approx(skm.silhouette_score(z[idx], y[idx]))
    assert got == M.silhouette(z, y, max_samples=60, seed=7)
    assert got != pytest.approx(skm.silhouette_score(z, y), abs=1e-12)


def test_cluster_acc_permutation_is_perfect():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    relabel = np.array([2, 0, 1])[y]
    assert M.cluster_acc(y, relabel) == 1.0
    assert M.cluster_acc(np.array(["a", "a", "b"]), np.array([5, 5, -1])) == 1.0


def test_cluster_acc_known_confusion():
    # contingency (pred x true): pred0 -> {0: 1, 1: 3}, pred1 -> {0: 2}
    # best matching pred0->1, pred1->0 gets 3 + 2 of 6
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_pred = np.array([1, 1, 0, 0, 0, 0])
    assert M.cluster_acc(y_true, y_pred) == pytest.approx(5 / 6)


def test_cluster_acc_unequal_cluster_and_class_counts():
    y_true = np.array([0, 0, 0, 1, 1, 1])
    # three clusters, two classes: cluster 1 matches nothing -> 5/6
    assert M.cluster_acc(y_true, np.array([0, 0, 1, 2, 2, 2])) == pytest.approx(5 / 6)
    # one cluster, three classes: only one class can be matched
    assert M.cluster_acc(np.array([0, 1, 2]), np.zeros(3, int)) == pytest.approx(1 / 3)


# ------------------------------------------------------------- neighbourhoods


def test_knn_acc_matches_sklearn():
    z, y = blobs(40, k=3, sep=1.5, seed=4)
    zt, yt = blobs(20, k=3, sep=1.5, seed=5)
    want = KNeighborsClassifier(n_neighbors=7).fit(z, y).score(zt, yt)
    assert M.knn_acc(z, y, zt, yt, k=7) == pytest.approx(want)
    # k larger than the training set is clipped, not an error
    assert 0.0 <= M.knn_acc(z[:3], y[:3], zt, yt, k=5) <= 1.0


def test_trustworthiness_matches_sklearn_and_subsamples():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(120, 2, 5))
    z = x.reshape(120, -1)[:, :3] + 0.1 * rng.normal(size=(120, 3))
    flat = x.reshape(120, -1)
    assert M.trustworthiness(x, z, k=4) == pytest.approx(sk_trustworthiness(flat, z, n_neighbors=4))
    idx = M.subsample(120, 50, 2)
    got = M.trustworthiness(x, z, k=4, max_samples=50, seed=2)
    assert got == pytest.approx(sk_trustworthiness(flat[idx], z[idx], n_neighbors=4))
    assert got == M.trustworthiness(x, z, k=4, max_samples=50, seed=2)


def test_trustworthiness_clips_k():
    rng = np.random.default_rng(7)
    x, z = rng.normal(size=(7, 4)), rng.normal(size=(7, 2))
    assert M.trustworthiness(x, z, k=5) == pytest.approx(sk_trustworthiness(x, z, n_neighbors=3))
    assert math.isnan(M.trustworthiness(x[:2], z[:2], k=5))


# ------------------------------------------------------------- degenerate


def test_silhouette_degenerate_is_nan():
    z = np.random.default_rng(0).normal(size=(10, 2))
    assert math.isnan(M.silhouette(z, np.zeros(10, int)))  # one cluster
    assert math.isnan(M.silhouette(z, np.arange(10)))  # every point its own cluster
    assert math.isnan(M.silhouette(np.ones((10, 2)), np.arange(10) % 2))  # identical codes


def test_latent_quality_identical_codes_does_not_raise():
    z = np.ones((50, 3))
    y = np.arange(50) % 5
    out = M.latent_quality(z, y, z, y, np.random.default_rng(0).random((50, 6)), num_classes=5)
    assert set(out) == KEYS
    assert all(type(v) is float for v in out.values())
    assert math.isnan(out["silhouette"])


def test_latent_quality_tiny_and_nonfinite_inputs():
    z = np.array([[0.0, 1.0]])
    out = M.latent_quality(z, [0], z, [0], z, num_classes=10)  # fewer codes than classes
    assert set(out) == KEYS and math.isnan(out["silhouette"]) and math.isnan(out["trustworthiness"])
    bad = np.full((20, 2), np.nan)
    out = M.latent_quality(bad, np.zeros(20), bad, np.zeros(20), bad, num_classes=2)
    assert all(math.isnan(v) for v in out.values())


# ----------------------------------------------------------------- summary


def test_latent_quality_on_separated_blobs():
    z_train, y_train = blobs(150, seed=10)
    z_test, y_test = blobs(100, seed=11)
    x_test = z_test @ np.random.default_rng(12).normal(size=(8, 20))
    out = M.latent_quality(z_train, y_train, z_test, y_test, x_test, num_classes=4,
                           max_samples=200, seed=0)
    assert set(out) == KEYS
    assert all(type(v) is float for v in out.values())
    assert out["silhouette"] > 0.7
    assert out["nmi"] > 0.9 and out["ari"] > 0.9 and out["cluster_acc"] > 0.95
    assert out["knn_acc"] > 0.95
    assert out["trustworthiness"] > 0.9
    again = M.latent_quality(z_train, y_train, z_test, y_test, x_test, num_classes=4,
                             max_samples=200, seed=0)
    assert again == out


def test_latent_quality_without_labels():
    z, y = blobs(50, seed=13)
    with pytest.raises(ValueError):
        M.latent_quality(z, None, z, None, z, num_classes=None)
    out = M.latent_quality(z, None, z, None, z, num_classes=4)
    assert set(out) == KEYS
    assert out["silhouette"] > 0.7 and out["trustworthiness"] > 0.9
    assert all(math.isnan(out[k]) for k in ("nmi", "ari", "cluster_acc", "knn_acc"))
    # with labels, num_classes may be left out and is taken from y_test
    inferred = M.latent_quality(z, y, z, y, z, num_classes=None)
    assert inferred == M.latent_quality(z, y, z, y, z, num_classes=4)
