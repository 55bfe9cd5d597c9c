"""Training objectives: what a minibatch costs, one function per kind of loss
(model families pick theirs: :meth:`aelab.models.family.Family.objective`).

An objective is ``f(model, x, y, epoch) -> (loss, parts)``; the trainer only
calls it, so it knows nothing about the model.  ``parts`` holds detached
tensors (summed into the epoch's history without a device sync per batch).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..models.autoencoder import kld
from ..models.family import conditioned
from ..spec import TrainSpec

Objective = Callable[[torch.nn.Module, torch.Tensor, "torch.Tensor | None", int],
                     tuple[torch.Tensor, dict[str, torch.Tensor]]]

_ELEMENTWISE = {
    "mse": lambda x_hat, x: F.mse_loss(x_hat, x, reduction="none"),
    "mae": lambda x_hat, x: F.l1_loss(x_hat, x, reduction="none"),
    "bce": lambda x_hat, x: _bce(x_hat, x),
}


def _bce(x_hat: torch.Tensor, x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Binary cross-entropy written out, with x_hat clipped to [eps, 1-eps] as
    Keras does; unlike ``F.binary_cross_entropy`` it accepts targets outside
    [0, 1] (the optimizer lesson trains BCE on standardized data)."""
    p = x_hat.clamp(eps, 1 - eps)
    return -(x * torch.log(p) + (1 - x) * torch.log1p(-p))


def elementwise_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Per-element reconstruction loss by name: mse, mae or bce."""
    return _ELEMENTWISE[name]


def kl_weight(beta: float, warmup: int, epoch: int) -> float:
    """beta ramped linearly over ``warmup`` epochs (Bowman et al. 2016, KL annealing):
    epoch 0 gets beta/warmup, epoch warmup-1 and later get beta."""
    return beta if warmup <= 0 else beta * min(1.0, (epoch + 1) / warmup)


_MEAN = {"mse": F.mse_loss, "mae": F.l1_loss}  # fused kernels: ~5% of an epoch faster than .mean()


def mean_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``f(x_hat, x)``: the reconstruction loss ``name`` averaged over every
    element (the autoencoder's loss, as Keras reports it)."""
    return _MEAN.get(name) or (lambda x_hat, x: _bce(x_hat, x).mean())


def summed_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``f(x_hat, x)``: the reconstruction loss ``name`` summed over each
    example's elements, averaged over the batch -- the per-example cost the
    papers add a per-example penalty to (the VAE's reconstruction term)."""
    fn = _MEAN.get(name)
    if fn is not None:
        return lambda x_hat, x: fn(x_hat, x, reduction="sum") / len(x)
    return lambda x_hat, x: _bce(x_hat, x).flatten(1).sum(1).mean()


def ae_objective(loss: str) -> Objective:
    """Mean per-element reconstruction loss (as Keras reports it)."""
    fn = mean_loss(loss)

    def objective(model, x, y, epoch):
        value = fn(model(x)["x_hat"], x)
        return value, {"recon": value.detach()}
    return objective


def vae_objective(loss: str, beta: float, warmup: int) -> Objective:
    """Negative ELBO per sample: reconstruction summed over pixels plus
    beta * KL(q(z|x) || p(z)) (Kingma & Welling 2014, eq. 10; Higgins et al.
    2017 for beta)."""
    fn = _MEAN.get(loss)

    def objective(model, x, y, epoch):
        out = model(x, *conditioned(model, y))  # a conditional VAE sees the labels (Sohn et al. 2015, eq. 4)
        if fn is not None:  # sum over pixels, mean over the batch
            recon = fn(out["x_hat"], x, reduction="sum") / len(x)
        else:
            recon = _bce(out["x_hat"], x).flatten(1).sum(1).mean()
        kl = kld(out["mu"], out["logvar"]).mean()
        value = recon + kl_weight(beta, warmup, epoch) * kl
        return value, {"recon": recon.detach(), "kl": kl.detach()}
    return objective


def classifier_objective() -> Objective:
    """Cross-entropy of the logits against integer labels."""

    def objective(model, x, y, epoch):
        logits = model(x)["logits"]
        value = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        return value, {"acc": acc.detach()}
    return objective


def make_objective(model, train: TrainSpec) -> Objective:
    """The objective of the family ``model.kind`` names."""
    from ..models.family import family
    return family(model.kind).objective(model, train)
