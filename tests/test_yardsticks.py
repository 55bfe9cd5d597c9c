"""Oracle tests of aelab.yardsticks: each measure against a formula or a
brute-force definition written here, on tiny seeded data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from aelab import yardsticks as Y
from aelab.lso import quality


# ------------------------------------------------------------ frechet_distance

def _textbook_fid(a, b):
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)


def test_frechet_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8)) @ (np.eye(8) + 0.3 * rng.normal(size=(8, 8)))
    b = rng.normal(loc=0.4, scale=1.5, size=(500, 8))
    assert Y.frechet_distance(a, b) == pytest.approx(_textbook_fid(a, b), rel=1e-8)


def test_frechet_closed_form_in_one_dimension():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 2, size=(1000, 1)), rng.normal(-1, 0.5, size=(800, 1))
    closed = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert Y.frechet_distance(x, y) == pytest.approx(closed, rel=1e-8)


def test_frechet_identical_symmetric_and_singular():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 6)), rng.normal(0.2, 1.3, size=(250, 6))
    assert Y.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert Y.frechet_distance(a, b) == pytest.approx(Y.frechet_distance(b, a), rel=1e-8)
    s, t = rng.normal(size=(5, 20)), rng.normal(1.0, size=(7, 20))  # N < D: singular covariances
    d = Y.frechet_distance(s, t)
    assert math.isfinite(d) and d >= 0
    assert math.isnan(Y.frechet_distance(a[:1], b))


def test_quality_reexports_the_same_functions():
    for name in ("NAN", "frechet_distance", "judge_correct", "mean_pairwise_distance", "nearest_distance"):
        assert getattr(quality, name) is getattr(Y, name)


# ------------------------------------------------------------ precision_recall

def _brute_pr(real, fake, k):
    """Kynkaanniemi et al. 2019, eqs. 1-2, as plain loops."""
    def radii(points):  # distance to the k-th nearest neighbour, the point itself excluded
        return [sorted(np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i)[k - 1]
                for i in range(len(points))]

    def f(phi, points, r):  # eq. 1: phi lies in some ball
        return any(np.linalg.norm(phi - points[j]) <= r[j] for j in range(len(points)))

    r_real, r_fake = radii(real), radii(fake)
    return np.mean([f(p, real, r_real) for p in fake]), np.mean([f(p, fake, r_fake) for p in real])


@pytest.mark.parametrize("k", [1, 3, 7])
def test_precision_recall_matches_the_brute_force_definition(k):
    rng = np.random.default_rng(k)
    real, fake = rng.normal(size=(40, 3)), rng.normal(0.8, 0.8, size=(55, 3))
    precision, recall = _brute_pr(real, fake, k)
    out = Y.precision_recall(real, fake, k=k)
    assert set(out) == {"precision", "recall"}
    assert out["precision"] == pytest.approx(precision, abs=1e-12)
    assert out["recall"] == pytest.approx(recall, abs=1e-12)
    assert 0 < out["precision"] < 1 and 0 < out["recall"] < 1  # the oracle was really exercised


def test_precision_recall_extremes_and_mode_dropping():
    rng = np.random.default_rng(10)
    real = rng.normal(size=(60, 3))
    assert Y.precision_recall(real, real.copy(), k=3) == {"precision": 1.0, "recall": 1.0}
    assert Y.precision_recall(real, real + 100.0, k=3) == {"precision": 0.0, "recall": 0.0}
    # samples from one corner of the real set only: all realistic, most of the real set missed
    near = np.argsort(np.linalg.norm(real - real[0], axis=1))[:15]
    fake = real[near] + rng.normal(scale=1e-3, size=(15, 3))
    out = Y.precision_recall(real, fake, k=3)
    assert out["precision"] == 1.0 and out["recall"] < 0.5


def test_on_the_radius_counts_as_inside():
    real = np.array([[0.0], [1.0], [3.0]])  # k=1 radii: 1, 1, 2
    assert Y.precision_recall(real, np.array([[2.0], [10.0]]), k=1)["precision"] == 0.5  # 2 is on ball of 1


def test_precision_recall_chunks_and_flattens():
    rng = np.random.default_rng(11)
    real, fake = rng.normal(size=(40, 2, 3)), rng.normal(0.5, size=(55, 2, 3))
    whole = Y.precision_recall(real, fake, k=2, chunk=1000)
    for chunk in (1, 7, 40):
        assert Y.precision_recall(real, fake, k=2, chunk=chunk) == whole
    assert Y.precision_recall(real.reshape(40, 6), fake.reshape(55, 6), k=2) == whole


@pytest.mark.parametrize("real, fake, kwargs, words", [
    (np.zeros((0, 3)), np.ones((5, 3)), {}, "non-empty real"),
    (np.ones((5, 3)), np.zeros((0, 3)), {}, "non-empty fake"),
    (np.ones((5, 3)), np.ones((5, 4)), {}, "same width"),
    (np.ones((5, 3)), np.ones((6, 3)), {"k": 0}, "1 <= k"),
    (np.ones((5, 3)), np.ones((6, 3)), {"k": 5}, "k=5 with 5 real"),
    (np.ones((9, 3)), np.ones((4, 3)), {"k": 4}, "4 fake"),
    (np.ones((5, 3)), np.ones((6, 3)), {"k": 2.5}, "integer k"),
    (np.ones((5, 3)), np.ones((6, 3)), {"chunk": 0}, "chunk"),
])
def test_precision_recall_bad_input(real, fake, kwargs, words):
    with pytest.raises(ValueError, match=words):
        Y.precision_recall(real, fake, **kwargs)


# ------------------------------------------------------------ class_shares, coverage

def test_class_shares_by_hand():
    assert Y.class_shares([0, 2, 2, 3], 4).tolist() == [0.25, 0.0, 0.5, 0.25]
    assert Y.class_shares(np.array([1.0, 1.0]), 3).tolist() == [0.0, 1.0, 0.0]
    for bad in ([0, 4], [-1, 0], [0.5]):
        with pytest.raises(ValueError, match="labels"):
            Y.class_shares(bad, 4)
    with pytest.raises(ValueError, match="at least one label"):
        Y.class_shares([], 4)


def test_coverage_uniform_single_and_by_hand():
    assert Y.coverage(np.full(5, 0.2)) == {"classes_covered": 5, "min_class_share": 0.2,
                                           "class_entropy": pytest.approx(1.0)}
    assert Y.coverage([0.0, 1.0, 0.0, 0.0]) == {"classes_covered": 1, "min_class_share": 0.0, "class_entropy": 0.0}
    out = Y.coverage([0.5, 0.375, 0.125, 0.0])  # half of 1/4 is 0.125: on the line counts
    assert out["classes_covered"] == 3 and out["min_class_share"] == 0.0
    h = -(0.5 * math.log(0.5) + 0.375 * math.log(0.375) + 0.125 * math.log(0.125)) / math.log(4)
    assert out["class_entropy"] == pytest.approx(h)
    with pytest.raises(ValueError, match="summing to 1"):
        Y.coverage([0.5, 0.2])


# ------------------------------------------------------------ judge accuracy

def test_judge_accuracy_and_per_class_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    intended = np.array([0, 1, 1, 1])  # hits: yes, yes, no, no
    assert Y.judge_accuracy(probs, intended) == 0.5
    per = Y.per_class_accuracy(probs, intended, 3)
    assert per[0] == 1.0 and per[1] == pytest.approx(1 / 3) and math.isnan(per[2])
    with pytest.raises(ValueError, match="labels in 0..2"):
        Y.per_class_accuracy(probs, np.array([0, 1, 3, 1]), 3)
    with pytest.raises(ValueError, match="intended labels"):
        Y.judge_accuracy(probs, intended[:3])


def test_the_floor_takes_training_images_of_the_samples_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    train = rng.normal(size=(60, 4)) + labels[:, None] * 5.0  # three well-separated classes
    test = rng.normal(size=(30, 4)) + np.repeat(np.arange(3), 10)[:, None] * 5.0
    gen_classes = np.array([1] * 10)
    balanced = Y.fid_pair(train[labels == 1][:10], test, train, 0, gen_classes, labels)
    pick = np.random.default_rng(0).choice(np.flatnonzero(labels == 1), size=10, replace=False)
    assert balanced["fid_real_floor"] == Y.frechet_distance(train[pick], test)  # ten class-1 training images
    assert balanced["fid"] == Y.frechet_distance(train[labels == 1][:10], test)
    with pytest.raises(ValueError, match="the floor needs 30 training images of class 1, the training set has 20"):
        Y.fid_pair(train[:30], test, train, 0, np.ones(30, int), labels)
