"""One yardstick for every generator: what metrics.json says about samples.

Every family that can ``generate`` (VAE, CVAE, GAN, CGAN) and every LSO
output is measured the same way, on the same number of samples:

* without a judge, in pixel space: ``diversity`` (mean pairwise distance of
  the samples) beside ``real_diversity`` (the same of real test images), and
  ``nn_distance`` (mean distance of a sample to its nearest training image;
  a copy of the training set scores 0);
* with a judge -- an independently trained classifier run, ``eval.judge`` or
  ``aelab evaluate RUN --judge JUDGE_RUN`` -- on its penultimate features and
  its verdicts: the Frechet distance to real test images (``fid``) beside the
  real-vs-real floor (``fid_real_floor``: as many training images against
  the same test images), ``precision`` and ``recall`` (Kynkaanniemi et al.
  2019), the judge's class shares of the samples (``classes_covered``,
  ``min_class_share``, ``class_entropy``: mode dropping shows here), and for
  a conditional model the share the judge names as the class asked for
  (``judge_accuracy``, and its worst class ``judge_accuracy_min``).

The pure measures live in :mod:`aelab.yardsticks`; this module draws the
samples, runs the judge and assembles the numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import yardsticks as Y
from .data import Dataset
from .errors import AelabError, RunDirError
from .models.family import CLASSIFY, CONDITIONAL, capabilities_of, families, family
from .runs import load_model, load_run

SAMPLES = 1000      # samples each measure is computed on
DIVERSITY_ROWS = 500  # of them, the rows whose pairwise distances give the diversity
PR_K = 3            # neighbours of the precision/recall manifolds (the paper's k)


def load_classifier(run_dir: str | Path, role: str = "--judge", error: type[AelabError] = RunDirError
                    ) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """A completed classifier run's model and input shape; any other run is
    one line naming ``role`` and what was expected."""
    run = load_run(run_dir)
    if not family(run.config.model.kind).has(CLASSIFY):
        kinds = ", ".join(f.kind for f in families() if f.has(CLASSIFY))
        raise error(f"{role} {run.path}: is a '{run.config.model.kind}' run, expected a classifier "
                    f"(a model kind that can classify: {kinds})")
    if run.status != "completed":
        raise RunDirError(f"{role} {run.path}: run status is '{run.status}', expected 'completed'")
    return load_model(run.path), tuple(run.model_info["input_shape"])


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
def draw(model: torch.nn.Module, n: int, seed: int, device) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples (N, C, H, W) of a generative model from its prior, and
    for a conditional one the classes asked for (0, 1, ..., K-1 in turn)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    if CONDITIONAL not in capabilities_of(model):
        return model.sample(n, generator=gen).cpu().numpy(), None
    y = torch.arange(n) % model.num_classes
    return model.sample(n, y.to(device), generator=gen).cpu().numpy(), y.numpy()


def unjudged(samples: np.ndarray, data: Dataset) -> dict[str, float]:
    """Diversity beside the real images', and the distance to the training set."""
    real = data.x_test if len(data.x_test) else data.x_train
    return {"diversity": Y.mean_pairwise_distance(samples[:DIVERSITY_ROWS]),
            "real_diversity": Y.mean_pairwise_distance(real[:DIVERSITY_ROWS]),
            "nn_distance": float(Y.nearest_distance(samples, data.x_train).mean())}


def judged(samples: np.ndarray, intended: np.ndarray | None, judge: torch.nn.Module, data: Dataset,
           seed: int) -> dict[str, float]:
    """The judge's view of ``samples``: Frechet distance and its floor,
    precision and recall against real test images, class coverage, and
    (``intended`` given) how often it names the class asked for."""
    probs, feats = judge_outputs(judge, samples)
    test_feats = judge_outputs(judge, data.x_test)[1]
    train_feats = judge_outputs(judge, data.x_train)[1]
    k = probs.shape[1]
    out = {**Y.fid_pair(feats, test_feats, train_feats, seed, intended, data.y_train),
           **Y.precision_recall(test_feats, feats, k=PR_K),
           **Y.coverage(Y.class_shares(probs.argmax(1), k))}
    if intended is not None:
        out["judge_accuracy"] = Y.judge_accuracy(probs, intended)
        out["judge_accuracy_min"] = float(np.nanmin(Y.per_class_accuracy(probs, intended, k)))
    return out


def check_judge(judge_shape: tuple[int, ...], image_shape: tuple[int, ...], where: str) -> None:
    if tuple(judge_shape) != tuple(image_shape):
        raise RunDirError(f"{where}: the judge takes {'x'.join(map(str, judge_shape))} inputs but the samples are "
                          f"{'x'.join(map(str, image_shape))} images; train the judge on the same data shape")


def generation_metrics(model: torch.nn.Module, data: Dataset, device, seed: int,
                       judge: str | Path | None = None, n: int = SAMPLES) -> dict:
    """Every yardstick of a generative model's prior samples (metrics.json)."""
    samples, intended = draw(model, n, seed, device)
    out = unjudged(samples, data)
    if judge is not None:
        judge_model, shape = load_classifier(judge)
        check_judge(shape, samples.shape[1:], f"eval.judge {judge}")
        out |= judged(samples, intended, judge_model, data, seed) | {"judge": str(judge)}
    return out
