"""Score a trained model on its data set (the test split, or the training
split when the spec keeps no test split).

The model is run in eval mode in fixed-size batches; the numbers themselves
come from the pure functions in :mod:`aelab.metrics`.
"""
from __future__ import annotations

import numpy as np
import torch

from . import metrics as M
from .data import Dataset
from .errors import ModelSpecError
from .models.autoencoder import kld
from .models.family import CONDITIONAL, EMBED, GENERATIVE, capabilities_of, family
from .spec import Config
from .training.objectives import elementwise_loss


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, device, batch_size: int = 1024,
            y: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run ``model`` over ``x`` (eval mode); returns numpy outputs by name
    (``x_hat``, ``z`` = the embedding, ``mu``/``logvar`` for VAEs, ``logits``).
    A conditional model gets the labels ``y`` too."""
    model.eval()
    chunks: dict[str, list] = {}
    for i in range(0, len(x), batch_size):
        args = _inputs(model, x, y, i, i + batch_size, device)
        out = dict(model(*args))
        out["z"] = model.embed(*args)
        for k, v in out.items():
            chunks.setdefault(k, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in chunks.items()}


def _inputs(model, x: np.ndarray, y: np.ndarray | None, lo: int, hi: int, device) -> tuple:
    """The batch ``x[lo:hi]`` on ``device``, with its labels for a conditional model."""
    xb = torch.as_tensor(x[lo:hi], device=device)
    if CONDITIONAL not in capabilities_of(model):
        return (xb,)
    if y is None:
        raise ModelSpecError(f"model.kind {model.kind}: a conditional model needs labelled data")
    return xb, torch.as_tensor(y[lo:hi], device=device, dtype=torch.long)


@torch.no_grad()
def embed(model: torch.nn.Module, x: np.ndarray, device, batch_size: int = 1024,
          y: np.ndarray | None = None) -> np.ndarray:
    """Only the codes ``z`` of :func:`predict` (the same batches, the same
    numbers), without running the decoder."""
    model.eval()
    return np.concatenate([model.embed(*_inputs(model, x, y, i, i + batch_size, device)).float().cpu().numpy()
                           for i in range(0, len(x), batch_size)])


def eval_split(data: Dataset) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The split metrics are reported on: test, or train when there is none."""
    if len(data.x_test):
        return data.x_test, data.y_test, "test"
    return data.x_train, data.y_train, "train"


def eval_factors(data: Dataset) -> np.ndarray | None:
    """The ground-truth factors of :func:`eval_split`'s images, when the
    data set carries them (``shapes``), else ``None``."""
    return data.factors_test if len(data.x_test) else data.factors_train


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    return {"recon_mse": M.recon_mse(x, x_hat), "recon_mae": M.recon_mae(x, x_hat),
            "recon_bce": M.recon_bce(x, x_hat)}


@torch.no_grad()
def elbo_metrics(model, x: np.ndarray, loss: str, device, seed: int, y: np.ndarray | None = None) -> dict[str, float]:
    """Per-sample ELBO = -(reconstruction term + KL), single-sample estimate
    with a fixed seed (so it is repeatable); conditioned on ``y`` for a
    conditional model."""
    gen = torch.Generator().manual_seed(seed)
    fn, recon, kl = elementwise_loss(loss), 0.0, 0.0
    for i in range(0, len(x), 1024):
        xb, *cond = _inputs(model, x, y, i, i + 1024, device)
        mu, logvar = model.encode(xb, *cond)
        eps = torch.randn(mu.shape, generator=gen).to(device)
        x_hat = model.decode(mu + torch.exp(0.5 * logvar) * eps, *cond)
        recon += float(fn(x_hat, xb).flatten(1).sum(1).sum())
        kl += float(kld(mu, logvar).sum())
    recon, kl = recon / len(x), kl / len(x)
    return {"elbo": -(recon + kl), "recon_term": recon, "kl": kl}


def evaluate_model(model: torch.nn.Module, cfg: Config, data: Dataset, device) -> dict:
    """All metrics of a trained model on ``data``'s evaluation split: the
    split, then what the model's family measures."""
    from .generation import SAMPLES, generation_metrics
    x, _, split = eval_split(data)
    out = {"eval_split": split, "eval_samples": int(len(x))} | family(cfg.model.kind).metrics(model, cfg, data, device)
    if GENERATIVE in capabilities_of(model):  # one yardstick for every generator
        out |= generation_metrics(model, data, device, cfg.eval.seed, cfg.eval.judge,
                                  n=min(SAMPLES, cfg.eval.max_samples))  # max_samples bounds O(n^2) work
    if EMBED in capabilities_of(model) and eval_factors(data) is not None:  # every embedding family
        out |= factor_metrics(model, cfg, data, device)
    return out


def factor_metrics(model, cfg: Config, data: Dataset, device) -> dict[str, float]:
    """MIG, the FactorVAE metric and DCI (:mod:`aelab.disentanglement`) of the
    codes of at most ``eval.max_samples`` evaluation images, drawn with
    ``eval.seed``, against their ground-truth factors."""
    from .disentanglement import disentanglement_metrics
    x, y, _ = eval_split(data)
    pick = M.subsample(len(x), cfg.eval.max_samples, cfg.eval.seed)
    z = embed(model, x[pick], device, y=None if y is None else y[pick])
    return disentanglement_metrics(z, eval_factors(data)[pick], seed=cfg.eval.seed)


def autoencoder_metrics(model, cfg: Config, data: Dataset, device) -> dict:
    """Reconstruction errors, and with labels the latent-space quality of the
    codes (k-means, k-NN, trustworthiness; :func:`aelab.metrics.latent_quality`)."""
    x, y, _ = eval_split(data)
    out = predict(model, x, device, y=y)
    result = reconstruction_metrics(x, out["x_hat"])
    if y is not None and data.num_classes:
        z_train = embed(model, data.x_train, device, y=data.y_train)  # k-NN needs the training codes only
        result |= M.latent_quality(
            z_train, data.y_train, out["z"], y, x, num_classes=data.num_classes,
            max_samples=cfg.eval.max_samples, knn_k=cfg.eval.knn_k, trust_k=cfg.eval.trust_k,
            seed=cfg.eval.seed)
    return result


def classifier_metrics(logits: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``logits`` against labels ``y``."""
    if y is None:
        return {}
    logp = torch.log_softmax(torch.as_tensor(logits), dim=1)
    yt = torch.as_tensor(y)
    return {"accuracy": float((logp.argmax(1) == yt).float().mean()),
            "test_loss": float(torch.nn.functional.nll_loss(logp, yt))}
