"""Fit a sampler to a run, draw its codes and decode them.

"The training codes" are the run's own training split (its config's data
section, loaded as it was for training; the test split is never seen)
embedded in eval mode -- ``embed``, so ``mu`` for a VAE -- with the labels
for a conditional model.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..data import load_dataset
from ..evaluation import embed
from ..models.family import CONDITIONAL, capabilities_of
from ..runs import Run, load_model
from . import SamplerError
from . import sampler as sampler_of
from .request import Request

BATCH = 1024  # codes decoded at once


def draw(req: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """Fit the sampler, draw the codes, decode them: (codes, images, classes, info)."""
    start = time.perf_counter()
    impl = sampler_of(req.name)
    model = load_model(req.run.path)
    training = training_codes(req.run, model) if impl.fits_codes else None
    density = impl.fit(req.spec, model, training, req.seed)
    fitted = time.perf_counter()
    codes = density.draw(req.n, torch.Generator().manual_seed(req.seed))
    labels = None if req.classes is None else np.resize(np.asarray(req.classes, np.int64), req.n)
    images = decode(model, codes, labels)
    info = {"sampler": req.name, "options": req.spec.model_dump(exclude={"sampler"}), "seed": req.seed,
            "n": req.n, "source": str(req.run.path), "kind": req.family.kind, "latent_dim": int(model.latent_dim),
            "fitted": density.facts(), "classes": req.classes, "image_shape": list(images.shape[1:]),
            "seconds": {"fit": round(fitted - start, 3), "draw": round(time.perf_counter() - fitted, 3)}}
    return codes.numpy(), images, labels, info


def training_codes(run: Run, model: torch.nn.Module) -> np.ndarray:
    """The codes of the run's training images (N, latent_dim), in eval mode."""
    data = load_dataset(run.config.data)
    conditional = CONDITIONAL in capabilities_of(model)
    codes = embed(model, data.x_train, "cpu", y=data.y_train if conditional else None)
    if not np.isfinite(codes).all():
        raise SamplerError(f"{run.path}: its encoder gives non-finite codes for the training images; "
                           f"there is nothing to fit a sampler to")
    return codes


@torch.no_grad()
def decode(model: torch.nn.Module, codes: torch.Tensor, labels: np.ndarray | None) -> np.ndarray:
    """``model.decode(z[, y])`` in batches, eval mode: (n, C, H, W) float32."""
    model.eval()
    parts = []
    for i in range(0, len(codes), BATCH):
        cond = () if labels is None else (torch.as_tensor(labels[i:i + BATCH]),)
        parts.append(model.decode(codes[i:i + BATCH], *cond).float().cpu().numpy())
    return np.concatenate(parts)
