"""``kind: wae``: the Wasserstein autoencoder with the MMD penalty
(Tolstikhin, Bousquet, Gelly & Schoelkopf 2018, "Wasserstein Auto-Encoders",
Algorithm 2):

    min  1/n sum_i c(x_i, G(z_i)) + lambda * MMD_k({z_i}, {z~_i}),
         z_i = Q(x_i) deterministic,  z~_i ~ p_z = N(0, sigma_z^2 I)

c is the reconstruction loss summed over each image's pixels (the paper's
per-example cost) and averaged over the batch; MMD_k is the unbiased
estimate of :mod:`.mmd`, against prior draws made inside the objective from
torch's global RNG (which the gradient trainer seeds every epoch, so a run
resumed after a kill draws the same).  The module is the plain
autoencoder's; only the objective differs, and the codes it is pushed
towards come from a prior, so it samples: ``sample(n)`` decodes draws of
p_z.  Beside the autoencoder's metrics it reports ``mmd``: the estimate
between at most ``eval.max_samples`` test codes (a seeded subset) and as
many prior draws of a generator seeded with ``eval.seed``.
"""
from __future__ import annotations

import torch

from .... import metrics as M
from ....evaluation import autoencoder_metrics, embed, eval_split
from ....figures import autoencoder_figures, prior_figures
from ....training.objectives import Objective, summed_loss
from ...autoencoder import Autoencoder
from ...build import autoencoder_parts
from ...family import DECODE, EMBED, GENERATIVE
from ..ae.family import AutoencoderFamily
from .mmd import MULTISCALE, kernel_scales, mmd, prior_draws


class WassersteinAutoencoder(Autoencoder):
    """The autoencoder module (x -> z -> x_hat, unchanged) under the name
    ``wae``, with the prior N(0, ``prior_scale``^2 I) it samples from."""

    kind = "wae"
    capabilities = frozenset({EMBED, DECODE, GENERATIVE})
    # what fused training stacks (aelab.training.fused.stack.layout): the autoencoder's parts, under Algorithm 2
    fused_layout = (("body", "to_latent", "decoder"), "wasserstein")

    def __init__(self, body, to_latent, decoder, prior_scale: float = 1.0):
        super().__init__(body, to_latent, decoder)
        self.prior_scale = prior_scale

    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws of the prior N(0, prior_scale^2 I) (``y`` is ignored: not conditional)."""
        dev = next(self.parameters()).device
        return self.decode(self.prior_scale * torch.randn(n, self.latent_dim, generator=generator).to(dev))


def wae_objective(loss: str, weight: float, kernel: str, prior_scale: float = 1.0,
                  scales: tuple[float, ...] = MULTISCALE) -> Objective:
    """Per-example reconstruction cost plus ``weight`` times MMD_k between the
    batch's codes and as many prior draws (Algorithm 2)."""
    fn = summed_loss(loss)

    def objective(model, x, y, epoch):
        out = model(x)
        z = out["z"]
        recon = fn(out["x_hat"], x)
        divergence = mmd(z, prior_draws(z, prior_scale), kernel, prior_scale, scales)
        return recon + weight * divergence, {"recon": recon.detach(), "mmd": divergence.detach()}
    return objective


@torch.no_grad()
def code_mmd(z, kernel: str, prior_scale: float, scales: tuple[float, ...], seed: int) -> float:
    """MMD_k between codes ``z`` (numpy (n, d)) and n prior draws of a generator seeded ``seed``."""
    q = torch.as_tensor(z, dtype=torch.float64)
    p = prior_draws(q, prior_scale, torch.Generator().manual_seed(seed))
    return float(mmd(q, p, kernel, prior_scale, scales))


class WAEFamily(AutoencoderFamily):
    kind = "wae"
    fuses_as = "wasserstein"  # training/fused/losses.py computes this objective for stacked members
    description = "Wasserstein autoencoder (WAE-MMD): reconstruction plus the MMD of the codes to a N(0, s^2 I) prior"
    capabilities = WassersteinAutoencoder.capabilities
    metric_names = AutoencoderFamily.metric_names + ("mmd",)
    methods = ("gradient",)  # the population trainers score the plain reconstruction, not the penalty
    example = {"encoder": [16], "latent_dim": 2}

    def build(self, spec, input_shape, num_classes):
        return WassersteinAutoencoder(*autoencoder_parts(spec, input_shape), prior_scale=spec.prior_scale)

    def objective(self, spec, train):
        return wae_objective(train.loss, spec.mmd_weight, spec.kernel, spec.prior_scale,
                             kernel_scales(spec.multiscale))

    def metrics(self, model, cfg, data, device):
        x, _, _ = eval_split(data)
        z = embed(model, x[M.subsample(len(x), cfg.eval.max_samples, cfg.eval.seed)], device)
        spec = cfg.model
        return autoencoder_metrics(model, cfg, data, device) | {
            "mmd": code_mmd(z, spec.kernel, spec.prior_scale, kernel_scales(spec.multiscale), cfg.eval.seed)}

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device) + prior_figures(folder, model, device, seed)


FAMILY = WAEFamily()
