"""Yardsticks: pure functions that measure generated images.

Each takes arrays (samples, features, labels or class probabilities) and
returns numbers; none trains, loads or saves anything, so they are easy to
test against oracles and cheap to import (numpy, scipy and torch only, no
other aelab module).

* ``frechet_distance``: distance between Gaussians fitted to two feature
  sets (Heusel et al. 2017, eq. 6);
* ``precision_recall``: the share of samples on the real manifold and of
  real images on the samples' manifold (Kynkaanniemi et al. 2019, eqs. 1-2);
* ``mean_pairwise_distance`` and ``nearest_distance``: diversity and
  closeness to the training set;
* ``judge_correct``, ``judge_accuracy``, ``per_class_accuracy``: whether an
  independent classifier (the judge) names the intended class;
* ``class_shares`` and ``coverage``: how evenly unconditional samples
  spread over the classes (mode dropping).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import pdist

NAN = float("nan")


# ------------------------------------------------------------ Frechet distance

def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))`` of features (N, D).

    The Frechet distance between Gaussians fitted to two feature sets
    (Heusel et al. 2017, "GANs trained by a two time-scale update rule",
    eq. 6).  ``Tr (C_a C_b)^(1/2)`` is computed as the sum of the square roots
    of the eigenvalues of the symmetric ``C_a^(1/2) C_b C_a^(1/2)`` (same
    spectrum), which stays real and stable when the covariances are singular
    (fewer samples than features).  NaN for fewer than two rows.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        return NAN
    mu_a, mu_b = a.mean(0), b.mean(0)
    c_a, c_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(c_a)
    eig = np.linalg.eigvalsh(root_a @ c_b @ root_a)
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(c_a) + np.trace(c_b) - 2.0 * np.sqrt(eig.clip(0)).sum())
    return max(value, 0.0)  # tiny negative values are round-off


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix."""
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(w.clip(0))) @ v.T


def fid_pair(gen_features: np.ndarray, test_features: np.ndarray, train_features: np.ndarray,
             seed: int = 0, gen_classes: np.ndarray | None = None,
             train_labels: np.ndarray | None = None) -> dict[str, float]:
    """Frechet distance of the samples against test images, and the floor:
    as many random training images against the same test images.  With
    the classes the samples were asked to be (``gen_classes``) and the
    training labels, the floor's images have the samples' class counts: a
    set with exactly ten of each digit sits closer to the test set's mean
    than ten random draws do, and would otherwise beat its own floor."""
    rng = np.random.default_rng(seed)
    if gen_classes is None or train_labels is None:
        pick = rng.choice(len(train_features), size=min(len(gen_features), len(train_features)), replace=False)
    else:
        pick = _same_classes(rng, np.asarray(gen_classes), np.asarray(train_labels))
    return {"fid": frechet_distance(gen_features, test_features),
            "fid_real_floor": frechet_distance(train_features[pick], test_features)}


def _same_classes(rng: np.random.Generator, classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices into ``labels``: for each class as many as ``classes`` holds (without replacement)."""
    picks = []
    for c, n in zip(*np.unique(classes, return_counts=True)):
        pool = np.flatnonzero(labels == c)
        if len(pool) < n:
            raise ValueError(f"the floor needs {n} training images of class {c}, the training set has {len(pool)}")
        picks.append(rng.choice(pool, size=n, replace=False))
    return np.concatenate(picks)


# ------------------------------------------------------------ distances

def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows (flattened samples)."""
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    return float(pdist(flat).mean()) if len(flat) >= 2 else NAN


def nearest_distance(x: np.ndarray, reference: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """Euclidean distance from each row of ``x`` to its nearest row of ``reference``: (N,)."""
    a = torch.as_tensor(np.asarray(x, np.float32).reshape(len(x), -1))
    r = torch.as_tensor(np.asarray(reference, np.float32).reshape(len(reference), -1))
    d = torch.cdist(a, r)  # (N, M)
    return d.min(1).values.numpy().astype(np.float64)


# ------------------------------------------------------------ precision and recall

def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, chunk: int = 1024) -> dict[str, float]:
    """Improved precision and recall of ``fake`` against ``real`` feature vectors.

    Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for
    Assessing Generative Models" (NeurIPS), section 2: the manifold of a set
    is the union of balls centred on its vectors, each with radius the
    distance to its ``k``-th nearest neighbour in the same set (itself
    excluded); eq. 1: f(phi, Phi) = 1 if phi lies in some ball of Phi (on the
    radius counts as inside); eq. 2: precision is the mean of f(fake_i, real)
    (are samples realistic?), recall the mean of f(real_j, fake) (is every
    part of the real distribution produced?).  Rows with more than one
    dimension are flattened; distances are float64, ``chunk`` rows at a time,
    so memory stays near ``chunk * max(len(real), len(fake))`` numbers.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    _check_pr_inputs(real, fake, k, chunk)
    real_radii, fake_radii = _kth_radii(real, k, chunk), _kth_radii(fake, k, chunk)
    return {"precision": float(_inside(fake, real, real_radii, chunk).mean()),
            "recall": float(_inside(real, fake, fake_radii, chunk).mean())}


def _features(x, name: str) -> torch.Tensor:
    """(N, D) float64 tensor of one feature set; ValueError when empty."""
    x = np.asarray(x, np.float64)
    if x.ndim == 0 or len(x) == 0 or x.size == 0:
        raise ValueError(f"precision_recall expects a non-empty {name} set of feature vectors, got shape {x.shape}.")
    return torch.as_tensor(x.reshape(len(x), -1))


def _check_pr_inputs(real: torch.Tensor, fake: torch.Tensor, k, chunk) -> None:
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"precision_recall expects real and fake vectors of the same width, "
                         f"got {real.shape[1]} and {fake.shape[1]}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < min(len(real), len(fake)):
        raise ValueError(f"precision_recall expects an integer k with 1 <= k < the size of each set, "
                         f"got k={k!r} with {len(real)} real and {len(fake)} fake vectors.")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"precision_recall expects a positive integer chunk, got {chunk!r}.")


def _kth_radii(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """(N,) distance from each row to its k-th nearest other row."""
    radii = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start:start + chunk], x)
        rows = torch.arange(len(d))
        d[rows, rows + start] = float("inf")  # exclude the vector itself
        radii.append(d.kthvalue(k, dim=1).values)
    return torch.cat(radii)


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> np.ndarray:
    """(N,) bool: f(point, centres) of eq. 1, whether a point lies in some ball."""
    hits = [(torch.cdist(points[s:s + chunk], centres) <= radii).any(1) for s in range(0, len(points), chunk)]
    return torch.cat(hits).numpy()


# ------------------------------------------------------------ class coverage

def class_shares(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) share of each class among integer labels, e.g. the judge's argmax
    on unconditional samples: the raw material of ``coverage``."""
    labels = _labels(labels, num_classes, "class_shares")
    if len(labels) == 0:
        raise ValueError("class_shares expects at least one label, got none.")
    return np.bincount(labels, minlength=num_classes) / len(labels)


def coverage(shares: np.ndarray) -> dict:
    """How evenly samples spread over K classes (mode dropping).

    Counting the classes a pretrained classifier finds among the samples
    follows the mode counts of Metz et al. 2017 ("Unrolled GANs") and
    Srivastava et al. 2017 ("VEEGAN").  ``classes_covered``: classes whose
    share is at least half the uniform share 1/K (our threshold);
    ``min_class_share``; ``class_entropy``: Shannon entropy of the shares over
    log K, in [0, 1], 1 when uniform, 0 when one class (0 log 0 = 0; a single
    class K = 1 counts as uniform, 1).
    """
    p = np.asarray(shares, np.float64)
    if p.ndim != 1 or len(p) == 0 or np.any(~np.isfinite(p)) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"coverage expects a 1-D array of non-negative shares summing to 1, got {p!r}.")
    n = len(p)
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum() / np.log(n)) if n > 1 else 1.0
    return {"classes_covered": int((p >= 0.5 / n).sum()), "min_class_share": float(p.min()),
            "class_entropy": float(np.clip(entropy, 0.0, 1.0))}


# ------------------------------------------------------------ judge verdicts

def judge_correct(judge_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """True where the judge's top class is one of the target's top classes
    (for a one-hot target: the target digit)."""
    top = judge_probs.argmax(1)
    best = targets.max(1, keepdims=True)
    return np.isclose(targets[np.arange(len(top)), top], best[:, 0]) & (best[:, 0] > 0)


def judge_accuracy(probs: np.ndarray, intended: np.ndarray) -> float:
    """Share of rows whose argmax names the intended class: how often an
    independent classifier agrees a conditional sample shows its label
    (NaN for no rows)."""
    hit = _hits(probs, intended, "judge_accuracy")
    return float(hit.mean()) if len(hit) else NAN


def per_class_accuracy(probs: np.ndarray, intended: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) ``judge_accuracy`` within each intended class; NaN for a class never intended."""
    hit = _hits(probs, intended, "per_class_accuracy")
    intended = _labels(intended, num_classes, "per_class_accuracy")
    return np.array([hit[intended == c].mean() if np.any(intended == c) else NAN for c in range(num_classes)])


def _hits(probs, intended, name: str) -> np.ndarray:
    """(N,) bool: argmax of each row of ``probs`` equals ``intended``."""
    probs, intended = np.asarray(probs), np.asarray(intended)
    if probs.ndim != 2 or intended.shape != (len(probs),):
        raise ValueError(f"{name} expects probs (N, K) and intended labels (N,), "
                         f"got shapes {probs.shape} and {intended.shape}.")
    return probs.argmax(1) == intended


def _labels(labels, num_classes: int, name: str) -> np.ndarray:
    """Integer labels as an int array; ValueError outside 0..K-1 or not whole."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"{name} expects a positive integer num_classes, got {num_classes!r}.")
    raw = np.asarray(labels).reshape(-1)
    if raw.size and (not np.all(np.isfinite(raw.astype(np.float64))) or np.any(raw != np.round(raw))):
        raise ValueError(f"{name} expects whole-number labels, got {raw[:5]!r}...")
    out = raw.astype(np.int64)
    bad = out[(out < 0) | (out >= num_classes)]
    if bad.size:
        raise ValueError(f"{name} expects labels in 0..{num_classes - 1}, got {bad[0]}.")
    return out
