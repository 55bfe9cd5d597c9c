"""``kind: rae``: the regularized autoencoder (Ghosh, Sajjadi, Vergari, Black
& Schoelkopf 2020, "From Variational to Deterministic Autoencoders", eq. 11):

    L_RAE = L_REC + beta * L_z + lambda * L_REG,   L_z = 1/2 ||z||^2,  z = E(x)

L_REC = ||x - D(E(x))||^2 is the reconstruction loss summed over each
image's pixels and averaged over the batch (the per-example cost of the
paper), like L_z; L_REG is RAE-L2's ||theta_D||^2 or RAE-GP's
||grad_z D(z)||^2 (:mod:`.penalty`).  The module is the plain autoencoder's,
deterministic: no noise, no prior.  It is therefore NOT ``generative``:
nothing makes the codes look like draws of N(0, I), and decoding such
draws is not the model.  Its samples come, as the paper's (Sec. 4.1), from
the ex-post density -- a 10-component Gaussian mixture fitted to the
training codes after training: the ``expost`` sampler, the family's default
for ``aelab sample``.

metrics.json holds the autoencoder's metrics, ``code_norm`` (mean ||z|| of
the evaluation codes), both regularizers' values (``decoder_l2``,
``gradient_penalty``: its mean over at most ``eval.max_samples`` evaluation
images, a seeded subset) and the generation yardsticks of every generator
(``diversity``, ``real_diversity``, ``nn_distance``: :mod:`aelab.generation`)
measured on samples of the ex-post GMM fitted with ``eval.seed``.
"""
from __future__ import annotations

import numpy as np
import torch

from .... import metrics as M
from ....evaluation import autoencoder_metrics, embed, eval_split
from ....figures import autoencoder_figures
from ....generation import SAMPLES, unjudged
from ....samplers.expost.sampler import COMPONENTS, fit_expost
from ....training.objectives import Objective, summed_loss
from ...autoencoder import Autoencoder
from ...build import autoencoder_parts
from ...family import DECODE, EMBED, GENERATION_METRICS
from ..ae.family import AutoencoderFamily
from .penalty import code_penalty, decoder_jacobian_norm_sq, decoder_l2


class RegularizedAutoencoder(Autoencoder):
    """The autoencoder module (x -> z -> x_hat, unchanged) under the name ``rae``."""

    kind = "rae"
    capabilities = frozenset({EMBED, DECODE})
    # what fused training stacks (aelab.training.fused.stack.layout): the autoencoder's parts, under eq. 11
    fused_layout = (("body", "to_latent", "decoder"), "regularized")


def rae_objective(loss: str, beta: float, lam: float, regularization: str) -> Objective:
    """Eq. 11 per batch: the summed reconstruction cost plus ``beta`` times
    the mean 1/2 ||z||^2 plus ``lam`` times L_REG (``l2``: ||theta_D||^2;
    ``gp``: the batch mean of ||J_D(z)||_F^2, at the codes decoded)."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        z = model.encode(x)
        if regularization == "gp":
            norm_sq, x_hat = decoder_jacobian_norm_sq(model.decode, z)
            reg = norm_sq.mean()
        else:
            x_hat, reg = model.decode(z), decoder_l2(model.decoder.parameters())
        recon, code = fn(x_hat, x), code_penalty(z).mean()
        value = recon + beta * code + lam * reg
        return value, {"recon": recon.detach(), "code": code.detach(), "reg": reg.detach()}
    return objective


def mean_gradient_penalty(model, x: np.ndarray, device, batch_size: int = 256) -> float:
    """The mean of ||J_D(E(x))||_F^2 over the images ``x`` (eval mode)."""
    model.eval()
    parts = []
    for i in range(0, len(x), batch_size):
        with torch.no_grad():
            z = model.encode(torch.as_tensor(x[i:i + batch_size], device=device))
        parts.append(decoder_jacobian_norm_sq(model.decode, z, create_graph=False)[0])
    return float(torch.cat(parts).mean())


@torch.no_grad()
def expost_samples(model, data, device, seed: int, n: int) -> np.ndarray:
    """``n`` images decoded from the paper's ex-post GMM of the training
    codes (fitted and drawn with ``seed``), in eval mode."""
    codes = embed(model, data.x_train, device)
    mixture = fit_expost(codes, min(COMPONENTS, len(codes)), seed)
    z = mixture.sample(n, torch.Generator().manual_seed(seed)).to(device)
    model.eval()
    return model.decode(z).cpu().numpy()


class RAEFamily(AutoencoderFamily):
    kind = "rae"
    fuses_as = "regularized"  # training/fused/losses.py computes this objective (RAE-L2) for stacked members
    description = ("regularized autoencoder (RAE-L2 / RAE-GP, Ghosh et al. 2020): reconstruction, code norm and a "
                   "decoder regularizer; sampled from its ex-post GMM")
    capabilities = RegularizedAutoencoder.capabilities
    metric_names = AutoencoderFamily.metric_names + ("code_norm", "decoder_l2", "gradient_penalty") + \
        GENERATION_METRICS
    methods = ("gradient",)  # the population trainers score the plain reconstruction, not eq. 11
    default_sampler = "expost"  # aelab sample without --sampler: the paper's ex-post density
    example = {"encoder": [16], "latent_dim": 2, "regularization": "gp", "reg_weight": 0.01}

    def build(self, spec, input_shape, num_classes):
        return RegularizedAutoencoder(*autoencoder_parts(spec, input_shape))

    def objective(self, spec, train):
        return rae_objective(train.loss, spec.embedding_weight, spec.reg_weight, spec.regularization)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        some = x[M.subsample(len(x), cfg.eval.max_samples, cfg.eval.seed)]
        z = embed(model, x, device)
        samples = expost_samples(model, data, device, cfg.eval.seed, min(SAMPLES, cfg.eval.max_samples))
        with torch.no_grad():
            l2 = float(decoder_l2(model.decoder.parameters()))
        return autoencoder_metrics(model, cfg, data, device) | {
            "code_norm": float(np.linalg.norm(z, axis=1).mean()), "decoder_l2": l2,
            "gradient_penalty": mean_gradient_penalty(model, some, device)} | unjudged(samples, data)

    def figures(self, folder, model, data, device, seed):
        from .... import plots
        samples = expost_samples(model, data, device, seed, 40)
        return autoencoder_figures(folder, model, data, device) + [plots.save_image_grid(
            samples, folder / "samples.png", ncols=10,
            title=f"Random samples from the ex-post GMM ({COMPONENTS} components) of the training codes")]


FAMILY = RAEFamily()
