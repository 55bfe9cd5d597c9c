"""``kind: cae``: the contractive autoencoder (Rifai, Vincent, Muller, Glorot
& Bengio 2011, "Contractive Auto-Encoders: Explicit Invariance During
Feature Extraction", eq. 7):

    J_CAE = sum_x L(x, g(f(x))) + lambda ||J_f(x)||_F^2

The penalty (:mod:`.jacobian`) makes the code insensitive to small moves of
the input in every direction the reconstruction does not need, so the
directions it keeps are those along the data.  L is summed over each image's
pixels and both terms are averaged over the batch, the paper's per-example
objective, so ``contraction`` is its lambda.  The module is the plain
autoencoder's; only the objective differs.  ``contraction`` in metrics.json
is the mean of ||J_f(x)||_F (not squared) over at most ``eval.max_samples``
evaluation images (a seeded subset).
"""
from __future__ import annotations

import numpy as np
import torch

from .... import metrics as M
from ....evaluation import autoencoder_metrics, eval_split
from ....training.objectives import Objective, summed_loss
from ...autoencoder import Autoencoder
from ...build import autoencoder_parts
from ..ae.family import AutoencoderFamily
from .jacobian import jacobian_norm_sq


class ContractiveAutoencoder(Autoencoder):
    """The autoencoder module (x -> z -> x_hat, unchanged) under the name ``cae``."""

    kind = "cae"


def contractive_objective(loss: str, weight: float) -> Objective:
    """Per-example reconstruction cost plus ``weight`` times the batch mean
    of ||J_f(x)||_F^2 (eq. 7); the code that is penalized is the one decoded."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        norm_sq, z = jacobian_norm_sq(model.encode, x)
        recon, jac = fn(model.decode(z), x), norm_sq.mean()
        return recon + weight * jac, {"recon": recon.detach(), "contraction": jac.detach()}
    return objective


def mean_jacobian_norm(model, x: np.ndarray, device, batch_size: int = 256) -> float:
    """The mean of ||J_f(x)||_F over the images ``x`` (eval mode)."""
    model.eval()
    norms = [jacobian_norm_sq(model.encode, torch.as_tensor(x[i:i + batch_size], device=device),
                              create_graph=False)[0].sqrt()
             for i in range(0, len(x), batch_size)]
    return float(torch.cat(norms).mean())


class CAEFamily(AutoencoderFamily):
    kind = "cae"
    description = "contractive autoencoder: reconstruction plus the encoder Jacobian's norm (Rifai et al. 2011)"
    metric_names = AutoencoderFamily.metric_names + ("contraction",)
    methods = ("gradient",)  # the population trainers score the plain reconstruction, not the penalty
    example = {"encoder": [16], "contraction": 0.1}

    def build(self, spec, input_shape, num_classes):
        return ContractiveAutoencoder(*autoencoder_parts(spec, input_shape))

    def objective(self, spec, train):
        return contractive_objective(train.loss, spec.contraction)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        subset = x[M.subsample(len(x), cfg.eval.max_samples, cfg.eval.seed)]
        return autoencoder_metrics(model, cfg, data, device) | {
            "contraction": mean_jacobian_norm(model, subset, device)}


FAMILY = CAEFamily()
