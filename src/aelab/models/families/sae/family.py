"""``kind: sae``: the sparse autoencoder (Andrew Ng, CS294A lecture notes
"Sparse autoencoder", section "Autoencoders and sparsity").

The loss is the reconstruction cost plus a sparsity penalty on the code,
J_sparse = J + beta * sum_j KL(rho || rho_hat_j) (``sparsity: kl``, on
sigmoid codes), or J + lambda * mean_i sum_j |z_ij| (``sparsity: l1``); see
:mod:`.penalty`.  J is summed over each image's pixels and averaged over
the batch: the notes' per-example cost, so the weight is on their scale
(their squared error carries a factor 1/2, so with ``loss: mse`` their beta
is half the ``sparsity_weight`` that strikes the same balance here).  The
module is the plain autoencoder's; only the objective differs.

Beside the autoencoder's metrics it reports, on the evaluation split,
``code_sparsity``: the fraction of code entries with |z| < 0.01 (units
"off" for an example; an L1 ReLU code has exact zeros), and
``mean_activation``: the mean code value, i.e. the mean over units of
rho_hat_j, which the KL penalty drives towards rho.
"""
from __future__ import annotations

import numpy as np

from ....evaluation import autoencoder_metrics, embed, eval_split
from ....training.objectives import Objective, summed_loss
from ...autoencoder import Autoencoder
from ...build import autoencoder_parts
from ..ae.family import AutoencoderFamily
from .penalty import penalty

OFF = 1e-2  # |z| below this counts as an inactive code unit (code_sparsity)


class SparseAutoencoder(Autoencoder):
    """The autoencoder module (x -> z -> x_hat, unchanged) under the name ``sae``."""

    kind = "sae"
    # what fused training stacks (aelab.training.fused.stack.layout): the autoencoder's parts, under J_sparse
    fused_layout = (("body", "to_latent", "decoder"), "sparse")


def sparse_objective(loss: str, sparsity: str, weight: float, rho: float) -> Objective:
    """Per-example reconstruction cost plus ``weight`` times the sparsity
    penalty of the batch's codes (Ng's J_sparse)."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        out = model(x)
        recon, sparse = fn(out["x_hat"], x), penalty(sparsity, out["z"], rho)
        return recon + weight * sparse, {"recon": recon.detach(), "sparsity": sparse.detach()}
    return objective


def code_metrics(z: np.ndarray) -> dict[str, float]:
    """``code_sparsity`` (fraction of entries with |z| < OFF) and
    ``mean_activation`` (mean over units of each unit's mean) of codes (N, s)."""
    return {"code_sparsity": float((np.abs(z) < OFF).mean()), "mean_activation": float(z.mean())}


class SAEFamily(AutoencoderFamily):
    kind = "sae"
    fuses_as = "sparse"  # training/fused/losses.py computes this objective for stacked members
    description = "sparse autoencoder: reconstruction plus a KL (Ng's notes) or L1 sparsity penalty on the code"
    metric_names = AutoencoderFamily.metric_names + ("code_sparsity", "mean_activation")
    methods = ("gradient",)  # the population trainers score the plain reconstruction, not the penalty
    example = {"encoder": [16], "sparsity": "kl"}

    def build(self, spec, input_shape, num_classes):
        return SparseAutoencoder(*autoencoder_parts(spec, input_shape))

    def objective(self, spec, train):
        return sparse_objective(train.loss, spec.sparsity, spec.sparsity_weight, spec.sparsity_target)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        return autoencoder_metrics(model, cfg, data, device) | code_metrics(embed(model, x, device))


FAMILY = SAEFamily()
