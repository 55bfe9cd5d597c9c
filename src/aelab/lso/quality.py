"""Objective quality measures of generated samples.

Pure functions on arrays (plus the two small networks they need):

* success rate at the threshold and steps to success;
* judge accuracy: how often an independent classifier (another architecture
  and seed than the one optimized against) names the target's class;
* realism: the autoencoder's reconstruction error of each sample, and the
  distance to the nearest training image;
* diversity: the mean pairwise distance between samples of one target;
* the Frechet distance between Gaussians fitted to the judge's penultimate
  features of the samples and of real test images (Heusel et al. 2017,
  "GANs trained by a two time-scale update rule", eq. 6, with the judge in
  place of Inception), beside the real-vs-real floor: a random set of real
  training images of the same size against the same test images.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import pdist

from ..models.family import conditioned
from .targets import target_name

NAN = float("nan")


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))`` of features (N, D).

    ``Tr (C_a C_b)^(1/2)`` is computed as the sum of the square roots of the
    eigenvalues of the symmetric ``C_a^(1/2) C_b C_a^(1/2)`` (same spectrum),
    which stays real and stable when the covariances are singular (fewer
    samples than features).
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


def judge_correct(judge_probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """True where the judge's top class is one of the target's top classes
    (for a one-hot target: the target digit)."""
    top = judge_probs.argmax(1)
    best = targets.max(1, keepdims=True)
    return np.isclose(targets[np.arange(len(top)), top], best[:, 0]) & (best[:, 0] > 0)


@torch.no_grad()
def judge_outputs(judge: torch.nn.Module, images: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The judge's probabilities (N, K) and penultimate features (N, F)."""
    probs, feats = [], []
    for i in range(0, len(images), batch):
        x = torch.as_tensor(np.asarray(images[i:i + batch], np.float32))
        probs.append(judge.predict_proba(x))
        feats.append(judge.embed(x))
    return torch.cat(probs).numpy(), torch.cat(feats).numpy()


@torch.no_grad()
def reconstruction_error(autoencoder: torch.nn.Module, images: np.ndarray, targets=None) -> np.ndarray:
    """Per-sample MSE of the autoencoder's reconstruction (encode -> decode);
    a conditional autoencoder reconstructs each image as its target."""
    x = torch.as_tensor(np.asarray(images, np.float32))
    cond = conditioned(autoencoder, None if targets is None else torch.as_tensor(np.asarray(targets, np.float32)))
    x_hat = autoencoder.decode(autoencoder.embed(x, *cond), *cond)
    return (x_hat - x).pow(2).flatten(1).mean(1).numpy().astype(np.float64)


def per_sample(images, targets, judge, train_images, autoencoder=None) -> dict[str, np.ndarray]:
    """Judge verdict, judge features, realism measures of every sample."""
    probs, feats = judge_outputs(judge, images)
    recon = reconstruction_error(autoencoder, images, targets) if autoencoder is not None \
        else np.full(len(images), NAN)
    return {"judge_correct": judge_correct(probs, targets), "judge_features": feats, "recon_error": recon,
            "nearest_train": nearest_distance(images, train_images)}


def fid_pair(gen_features: np.ndarray, test_features: np.ndarray, train_features: np.ndarray,
             seed: int = 0) -> dict[str, float]:
    """Frechet distance of the samples against test images, and the floor:
    as many random training images against the same test images."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_features), size=min(len(gen_features), len(train_features)), replace=False)
    return {"fid": frechet_distance(gen_features, test_features),
            "fid_real_floor": frechet_distance(train_features[pick], test_features)}


def _mean(a) -> float:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else NAN


def summarize(images, targets, success, steps, measures: dict[str, np.ndarray]) -> dict[str, float]:
    """Scalar measures of one group of samples (a target, or all of them)."""
    success = np.asarray(success, bool)
    return {"n": int(len(images)), "success_rate": _mean(success),
            "steps_to_success": _mean(np.asarray(steps)[success]) if success.any() else NAN,
            "judge_accuracy": _mean(measures["judge_correct"]),
            "recon_error": _mean(measures["recon_error"]), "nearest_train": _mean(measures["nearest_train"]),
            "diversity": mean_pairwise_distance(images)}


def per_target_table(images, targets, success, steps, measures: dict[str, np.ndarray]) -> list[dict]:
    """One row per distinct target (in first-seen order) and an ``all`` row."""
    rows, targets = [], np.asarray(targets)
    _, first = np.unique(targets, axis=0, return_index=True)
    for i in sorted(first):
        mask = np.all(targets == targets[i], axis=1)
        sub = {k: np.asarray(v)[mask] for k, v in measures.items()}
        rows.append({"target": target_name(targets[i]),
                     **summarize(images[mask], targets[mask], np.asarray(success)[mask], np.asarray(steps)[mask], sub)})
    overall = summarize(images, targets, success, steps, measures)
    overall["diversity"] = _mean([r["diversity"] for r in rows])  # within-target, averaged
    rows.append({"target": "all", **overall})
    return rows
