"""Oracles for the disentanglement metrics (aelab.disentanglement): codes
whose answer is known -- the factors themselves, permuted and rescaled (1),
pure noise (0, or chance for the FactorVAE metric), two factors mixed into
two dimensions (in between) -- and each metric against its equation
written out by hand: MIG from sklearn's mutual_info_score and an entropy
summed by hand, the majority vote counted by hand, D and C from a small
importance matrix.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from aelab import disentanglement as D
from aelab.models.family import DISENTANGLEMENT_METRICS

N = 2000
SMALL_GRID = (3, 6, 10, 16, 16)   # every factor has at most 20 values: MIG can reach 1
DSPRITES_GRID = (3, 6, 40, 32, 32)
PERM = [3, 0, 7, 1, 5]            # factor k lives in code dimension PERM[k]


def factors(grid=SMALL_GRID, n=N, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, g, n) for g in grid], axis=1)


def disentangled(f: np.ndarray, dims: int = 10, seed: int = 1) -> np.ndarray:
    """Factor k, rescaled and shifted, in dimension PERM[k]; the other
    dimensions independent noise (a code of ``dims`` dimensions)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(len(f), dims))
    for k, j in enumerate(PERM):
        z[:, j] = (k - 2.5) * f[:, k] + 3.0
    return z


def mixed(f: np.ndarray) -> np.ndarray:
    """As :func:`disentangled`, but the two position factors share their two
    dimensions (their sum and their difference)."""
    z = disentangled(f)
    z[:, PERM[3]], z[:, PERM[4]] = f[:, 3] + f[:, 4], f[:, 3] - f[:, 4]
    return z


def noise(f: np.ndarray) -> np.ndarray:
    return np.random.default_rng(2).normal(size=(len(f), 10))


# -------------------------------------------------------------------- MIG


def test_mig_is_one_for_the_factors_themselves_and_near_zero_for_noise():
    f = factors()
    assert D.mig(disentangled(f), f) > 0.97
    assert D.mig(noise(f), f) < 0.03


def test_mig_of_a_perfect_code_is_capped_by_twenty_bins_for_a_factor_of_forty_values():
    # 40 equally frequent values, 20 equal-width bins: each bin holds exactly two values,
    # so I(z; v) = log 20 while H(v) = log 40 (the other dimension is constant: I = 0).
    v = np.repeat(np.arange(40), 25)
    z = np.stack([v * 0.5, np.zeros(len(v))], axis=1)
    assert D.mig(z, v[:, None]) == pytest.approx(np.log(20) / np.log(40), abs=1e-12)


def test_mig_equals_its_equation_written_out():
    f = factors(DSPRITES_GRID, n=600)
    z = mixed(f) + np.random.default_rng(3).normal(size=(600, 10))
    gaps = []
    for k in range(f.shape[1]):
        mi = []
        for j in range(z.shape[1]):
            edges = np.histogram(z[:, j], bins=20)[1][:-1]
            mi.append(mutual_info_score(f[:, k], np.digitize(z[:, j], edges)))
        p = np.bincount(f[:, k]) / len(f)
        p = p[p > 0]
        h = -np.sum(p * np.log(p))                      # H(v_k), by hand
        top = sorted(mi, reverse=True)
        gaps.append((top[0] - top[1]) / h)
    assert D.mig(z, f) == pytest.approx(np.mean(gaps), rel=1e-12)


def test_mig_orders_disentangled_over_mixed_over_noise_and_ignores_permutation_and_scale():
    f = factors()
    clean, mix, rand = D.mig(disentangled(f), f), D.mig(mixed(f), f), D.mig(noise(f), f)
    assert clean > mix > rand and 0.3 < mix < 0.8
    z = disentangled(f)
    assert D.mig(z[:, ::-1] * 7.0 - 1.0, f) == pytest.approx(D.mig(z, f))


def test_mig_leaves_out_a_factor_with_one_value():
    f = factors()
    f_const = np.c_[f, np.zeros(len(f), dtype=int)]
    assert D.mig(disentangled(f), f_const) == pytest.approx(D.mig(disentangled(f), f))
    assert np.isnan(D.mig(np.ones((10, 3)), np.zeros((10, 2), dtype=int)))


# -------------------------------------------------------- FactorVAE metric


def test_factorvae_score_is_one_for_the_factors_and_chance_for_noise():
    f = factors(DSPRITES_GRID)
    assert D.factor_vae_score(disentangled(f), f, seed=0) == 1.0
    chance = 1 / f.shape[1]
    assert abs(D.factor_vae_score(noise(f), f, seed=0) - chance) < 0.1


def test_factorvae_score_orders_mixed_between_and_is_repeatable():
    f = factors(DSPRITES_GRID)
    mix = D.factor_vae_score(mixed(f), f, seed=0)
    assert D.factor_vae_score(noise(f), f, seed=0) < mix < 1.0
    assert D.factor_vae_score(mixed(f), f, seed=0) == mix


def test_majority_vote_accuracy_by_hand():
    train = np.array([[3, 0], [1, 2], [0, 4]])   # dim 0 -> factor 0, dim 1 -> factor 2 (4 > 2)
    evaluation = np.array([[2, 1], [0, 3], [1, 1]])
    # right: factor 0 voting dim 0 (2) and factor 2 voting dim 1 (1), of 8 votes
    assert D.majority_accuracy(train, evaluation) == pytest.approx(3 / 8)
    assert np.isnan(D.majority_accuracy(train, np.zeros_like(evaluation)))


def test_votes_divide_by_each_dimensions_spread_before_the_argmin():
    # z0 = 0.001 (f0 + 0.1 f1) is tiny in raw units; z1 = f0 + f1.  With f1 fixed, the
    # raw argmin would be z0 always; normalised, z0 keeps ~99 % of its variance and
    # z1 ~50 %, so z1 wins: every vote lands on the diagonal.
    f = factors((10, 10))
    z = np.stack([0.001 * (f[:, 0] + 0.1 * f[:, 1]), f[:, 0] + f[:, 1]], axis=1).astype(float)
    votes = D.factor_votes(z, f, 500, np.random.default_rng(0))
    assert votes.sum() == 500 and votes[0, 1] == 0 and votes[1, 0] == 0
    assert D.factor_vae_score(z, f) == 1.0


def test_constant_dimensions_get_no_votes_and_all_constant_codes_score_zero():
    f = factors()
    z = np.c_[disentangled(f)[:, PERM], np.full((len(f), 2), 4.0)]
    votes = D.factor_votes(z, f, 300, np.random.default_rng(0))
    assert votes[:, 5:].sum() == 0
    assert D.factor_vae_score(np.ones((50, 4)), factors(n=50)) == 0.0


# -------------------------------------------------------------------- DCI


def test_d_and_c_of_small_importance_matrices_by_hand():
    assert D.disentanglement(np.eye(3)) == pytest.approx(1.0)
    assert D.completeness(np.eye(3)) == pytest.approx(1.0)
    assert D.disentanglement(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-9)
    assert D.completeness(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-9)
    one_dim_for_all = np.array([[1.0, 1.0, 1.0], [0, 0, 0], [0, 0, 0]])
    assert D.disentanglement(one_dim_for_all) == pytest.approx(0.0, abs=1e-9)  # it serves every factor
    assert D.completeness(one_dim_for_all) == pytest.approx(1.0, abs=1e-6)     # each factor in one dim

    r = np.array([[0.9, 0.1], [0.2, 0.8]])
    def h2(p):  # entropy in base 2 of a two-way split
        p = np.asarray(p) / np.sum(p)
        return -np.sum(p * np.log(p)) / np.log(2)
    rho = r.sum(1) / r.sum()
    d = rho[0] * (1 - h2(r[0])) + rho[1] * (1 - h2(r[1]))
    w = r.sum(0) / r.sum()
    c = w[0] * (1 - h2(r[:, 0])) + w[1] * (1 - h2(r[:, 1]))
    assert D.disentanglement(r) == pytest.approx(d, rel=1e-9)
    assert D.completeness(r) == pytest.approx(c, rel=1e-9)


def test_dci_is_near_one_for_the_factors_near_zero_for_noise_and_between_for_mixed():
    f = factors(DSPRITES_GRID)
    clean, mix, rand = D.dci(disentangled(f), f), D.dci(mixed(f), f), D.dci(noise(f), f)
    assert clean["dci_disentanglement"] > 0.9 and clean["dci_completeness"] > 0.9
    assert clean["dci_informativeness"] > 0.95
    assert rand["dci_disentanglement"] < 0.1 and rand["dci_completeness"] < 0.1
    assert rand["dci_informativeness"] < 0.3
    for key in ("dci_disentanglement", "dci_completeness"):
        assert clean[key] > mix[key] > rand[key]


def test_importance_matrix_points_each_factor_at_its_dimension():
    f = factors(DSPRITES_GRID, n=900)
    z = disentangled(f)
    r, acc = D.importance_matrix(z[:600], f[:600], z[600:], f[600:])
    assert r.shape == (10, 5) and np.allclose(r.sum(axis=0), 1.0)
    assert list(np.argmax(r, axis=0)) == PERM and acc > 0.95


def test_a_wide_embedding_is_scored_on_sqrt_d_dimensions_per_split_and_still_points_right():
    f = factors(DSPRITES_GRID, n=900)
    z = np.c_[disentangled(f), np.random.default_rng(4).normal(size=(900, 30))]  # 40 > WIDE dimensions
    assert z.shape[1] > D.WIDE
    r, acc = D.importance_matrix(z[:600], f[:600], z[600:], f[600:])
    assert list(np.argmax(r, axis=0)) == PERM  # fewer dimensions per split fit less (acc ~0.5), but
    assert np.all(r[PERM, range(5)] > 5 * np.delete(r, PERM, axis=0).max(axis=0))  # the right one stands out


# ---------------------------------------------------------------- together


def test_every_metric_by_its_metrics_json_key_and_bad_shapes_refused():
    f = factors(n=300)
    out = D.disentanglement_metrics(disentangled(f), f, seed=0)
    assert tuple(out) == DISENTANGLEMENT_METRICS
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in out.values())
    with pytest.raises(ValueError, match="factors must be"):
        D.mig(np.zeros((5, 2)), np.zeros((4, 1), dtype=int))
