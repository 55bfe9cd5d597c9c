"""Objective quality measures of generated samples.

Functions on arrays (plus the two small networks they need):

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

The pure measures (Frechet distance, pairwise and nearest distances, the
judge's verdict) live in :mod:`aelab.yardsticks` and are imported here, so
``quality.frechet_distance`` and the rest keep working; this module adds
the parts that run networks and the per-target tables.
"""
from __future__ import annotations

import numpy as np
import torch

from ..generation import judge_outputs  # noqa: F401 -- part of this module's API
from ..models.family import EMBED, capabilities_of, conditioned
from ..yardsticks import (NAN, fid_pair, frechet_distance, judge_correct,  # noqa: F401 -- re-exported
                          mean_pairwise_distance, nearest_distance)
from .targets import target_name


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
    can_reconstruct = autoencoder is not None and EMBED in capabilities_of(autoencoder)  # a GAN has no encoder
    recon = reconstruction_error(autoencoder, images, targets) if can_reconstruct else np.full(len(images), NAN)
    return {"judge_correct": judge_correct(probs, targets), "judge_features": feats, "recon_error": recon,
            "nearest_train": nearest_distance(images, train_images)}


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
