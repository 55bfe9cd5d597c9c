"""``kind: vqvae``: the VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017,
"Neural Discrete Representation Learning"), eq. 3 per example:

    L = -log p(x | z_q(x)) + ||sg[z_e(x)] - e||^2 + beta ||z_e(x) - sg[e]||^2

The reconstruction term is ``train.loss`` summed over each image's pixels
(the per-example cost, as the VAE's here); the squared norms are summed
over every value of the code (all its code vectors), and the three are
averaged over the batch.  With ``codebook: ema`` the codebook term is
dropped and the codebook follows its moving averages (Appendix A.1, done in
the module's training-mode forward: :mod:`.module`).  The decoder gets the
straight-through z_e + sg[z_q - z_e] (sec. 3.2), so the reconstruction's
gradient w.r.t. z_q is passed to z_e unchanged, the codebook term trains
only the codebook and the commitment term only the encoder.

Beside the autoencoder's metrics (on z_e, what ``embed`` gives), it
reports on the evaluation split ``codebook_usage`` (the fraction of the K
codes assigned at least once), ``perplexity`` (exp of the entropy of the
average assignment, as Sonnet's) and ``quantization_error`` (the mean over
images of ||z_e - z_q||^2, summed over the code).

It is not ``generative``: a VQ-VAE samples through a learned prior over the
code indices (the paper's PixelCNN), which this family does not fit.  A
density fitted to the training codes (``aelab sample RUN --sampler gmm``)
draws continuous codes that ``decode`` quantises before decoding.
"""
from __future__ import annotations

import numpy as np
import torch

from ....evaluation import autoencoder_metrics, eval_split, predict
from ....training.objectives import Objective, summed_loss
from ...family import DECODE, EMBED
from ..ae.family import AutoencoderFamily
from .module import build_vqvae
from .quantizer import code_statistics


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||^2 summed over each example's values, averaged over the batch."""
    return (a - b).pow(2).flatten(1).sum(1).mean()


def vq_terms(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3's (codebook, commitment) terms: ||sg[z_e] - e||^2, whose
    gradient reaches only the codebook, and ||z_e - sg[e]||^2, whose
    gradient reaches only the encoder."""
    return squared_distance(z_e.detach(), z_q), squared_distance(z_e, z_q.detach())


def vqvae_objective(loss: str, beta: float, learned_codebook: bool = True) -> Objective:
    """Eq. 3: the reconstruction, the codebook term (unless the codebook is
    the EMA's) and beta times the commitment term."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        out = model(x)
        z_e, z_q = out["z"], out["z_q"]
        recon = fn(out["x_hat"], x)
        codebook, commitment = vq_terms(z_e, z_q)
        parts = {"recon": recon.detach(), "commitment": commitment.detach()}
        value = recon + beta * commitment
        if learned_codebook:
            value = value + codebook
            parts["codebook"] = codebook.detach()
        return value, parts
    return objective


def quantization_metrics(model, z: np.ndarray, z_q: np.ndarray, indices: np.ndarray) -> dict[str, float]:
    """Usage and perplexity of the assignments, and the mean squared distance of the codes to their quanta."""
    error = float(((z.astype(np.float64) - z_q) ** 2).sum(1).mean())
    return code_statistics(indices.astype(np.int64), model.quantizer.codebook_size) | {"quantization_error": error}


class VQVAEFamily(AutoencoderFamily):
    kind = "vqvae"
    description = ("VQ-VAE: each code vector replaced by its nearest of K codebook vectors, straight-through "
                   "gradient, codebook and commitment losses or an EMA codebook")
    capabilities = frozenset({EMBED, DECODE})
    metric_names = AutoencoderFamily.metric_names + ("codebook_usage", "perplexity", "quantization_error")
    methods = ("gradient",)  # the population trainers score the plain reconstruction, and an EMA needs steps
    example = {"encoder": [16], "latent_dim": 4, "embedding_dim": 2, "codebook_size": 16}

    def build(self, spec, input_shape, num_classes):
        return build_vqvae(spec, input_shape)

    def objective(self, spec, train):
        return vqvae_objective(train.loss, spec.commitment_cost, spec.codebook == "loss")

    def metrics(self, model, cfg, data, device):
        x, y, _ = eval_split(data)
        out = predict(model, x, device, y=y)
        return autoencoder_metrics(model, cfg, data, device) | quantization_metrics(
            model, out["z"], out["z_q"], out["indices"])


FAMILY = VQVAEFamily()
