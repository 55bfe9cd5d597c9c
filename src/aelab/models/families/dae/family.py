"""``kind: dae``: the denoising autoencoder (Vincent, Larochelle, Bengio &
Manzagol 2008, "Extracting and Composing Robust Features with Denoising
Autoencoders", §2.3).

The input is corrupted, x~ ~ q_D(x~|x) (:mod:`.corruption`), the code is
computed from the corrupted copy, y = f(x~), and the loss compares the
reconstruction z = g(y) with the CLEAN input: L(x, g(f(x~))).  Rebuilding x
from x~ cannot be done by copying, so the code has to hold the structure
that ties the inputs together.  The corruption is a training device: in
eval mode (validation loss, metrics, figures, the explorer) the model sees
clean inputs, and ``denoise_mse`` measures the denoising itself on a
fixed-seed corruption of the test split.  The module is the plain
autoencoder's; only the objective differs.
"""
from __future__ import annotations

import numpy as np
import torch

from ....evaluation import autoencoder_metrics, eval_split
from ....figures import autoencoder_figures
from ....training.objectives import Objective, mean_loss
from ...autoencoder import Autoencoder
from ...build import autoencoder_parts
from ..ae.family import AutoencoderFamily
from .corruption import corrupt


class DenoisingAutoencoder(Autoencoder):
    """The autoencoder module (x -> z -> x_hat, unchanged) under the name
    ``dae``, knowing the corruption it was trained against (for its figure)."""

    kind = "dae"
    # what fused training stacks (aelab.training.fused.stack.layout): the autoencoder's parts, input corrupted
    fused_layout = (("body", "to_latent", "decoder"), "denoising")

    def __init__(self, body, to_latent, decoder, noise: str, noise_level: float):
        super().__init__(body, to_latent, decoder)
        self.noise, self.noise_level = noise, noise_level


def denoising_objective(loss: str, noise: str, level: float) -> Objective:
    """Mean per-element loss of g(f(x~)) against the clean x (Vincent et al.
    2008, §2.3: L_H(x, z) with z computed from x~).  Corrupts only in
    training mode; the noise comes from torch's global RNG (seeded per epoch
    by the trainer), so resuming replays it."""
    fn = mean_loss(loss)

    def objective(model, x, y, epoch):
        x_in = corrupt(x, noise, level) if model.training else x
        value = fn(model(x_in)["x_hat"], x)
        return value, {"recon": value.detach()}
    return objective


@torch.no_grad()
def denoise_mse(model, x: np.ndarray, noise: str, level: float, device, seed: int,
                batch_size: int = 1024) -> float:
    """MSE between the clean ``x`` and the reconstructions of its corrupted
    copies, one fixed-seed corruption (repeatable) with the split's own
    minimum and maximum as salt-and-pepper's values."""
    model.eval()
    gen, lo, hi, total = torch.Generator().manual_seed(seed), float(x.min()), float(x.max()), 0.0
    for i in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[i:i + batch_size], device=device)
        x_hat = model(corrupt(xb, noise, level, gen, lo, hi))["x_hat"]
        total += float(((x_hat - xb) ** 2).sum())
    return total / x.size


class DAEFamily(AutoencoderFamily):
    kind = "dae"
    fuses_as = "denoising"  # training/fused/losses.py computes this objective for stacked members
    description = "denoising autoencoder: rebuilds the clean input from a corrupted copy (Vincent et al. 2008)"
    metric_names = AutoencoderFamily.metric_names + ("denoise_mse",)
    methods = ("gradient",)  # the population trainers score the plain reconstruction, not the denoising loss
    example = {"encoder": [16], "noise": "masking", "noise_level": 0.25}

    def build(self, spec, input_shape, num_classes):
        return DenoisingAutoencoder(*autoencoder_parts(spec, input_shape), spec.noise, spec.noise_level)

    def objective(self, spec, train):
        return denoising_objective(train.loss, spec.noise, spec.noise_level)

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        return autoencoder_metrics(model, cfg, data, device) | {
            "denoise_mse": denoise_mse(model, x, cfg.model.noise, cfg.model.noise_level, device, cfg.eval.seed)}

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device) + [denoising_figure(folder, model, data, device, seed)]


@torch.no_grad()
def denoising_figure(folder, model, data, device, seed: int, n: int = 10):
    """Three rows: the first ``n`` evaluation images, a fixed-seed corruption
    of them and the reconstructions of the corrupted copies."""
    from ....plots import save_reconstruction_rows
    x, _, split = eval_split(data)
    xb = torch.as_tensor(x[:n], device=device)
    gen = torch.Generator().manual_seed(seed)
    noisy = corrupt(xb, model.noise, model.noise_level, gen, float(x.min()), float(x.max()))
    model.eval()
    rows = [("clean", xb.cpu().numpy()), ("corrupted", noisy.cpu().numpy()),
            ("reconstruction", model(noisy)["x_hat"].cpu().numpy())]
    return save_reconstruction_rows(rows, folder / "denoising.png",
                                    title=f"Clean, corrupted ({model.noise} {model.noise_level:g}) and "
                                          f"reconstructed images ({split} split)")


FAMILY = DAEFamily()
