"""``kind: vae``: x -> encoder -> (mu, logvar) -> z = mu + sigma * eps ->
decoder, trained on the negative ELBO (Kingma & Welling 2014, eq. 10)."""
from __future__ import annotations

from ....evaluation import autoencoder_metrics, elbo_metrics, eval_split
from ....figures import autoencoder_figures, prior_figures
from ....training.objectives import vae_objective
from ...autoencoder import VAE
from ...build import variational_parts
from ...family import DECODE, EMBED, GENERATIVE
from ..ae.family import AutoencoderFamily

ELBO = ("elbo", "recon_term", "kl")


class VAEFamily(AutoencoderFamily):
    kind = "vae"
    fuses_as = "variational"  # training/fused/losses.py computes this objective for stacked members
    description = "variational autoencoder: a Gaussian code with a N(0, I) prior, trained on the negative ELBO"
    capabilities = frozenset({EMBED, DECODE, GENERATIVE})
    metric_names = AutoencoderFamily.metric_names + ELBO
    methods = ("gradient",)  # its loss samples: a fitness would be noisy, and Population runs plain AEs

    def build(self, spec, input_shape, num_classes):
        return VAE(*variational_parts(spec, input_shape), spec.latent_dim)

    def objective(self, spec, train):
        return vae_objective(train.loss, spec.beta, spec.kl_warmup)

    def metrics(self, model, cfg, data, device):
        x, y, _ = eval_split(data)
        return autoencoder_metrics(model, cfg, data, device) | elbo_metrics(model, x, cfg.train.loss, device,
                                                                            cfg.eval.seed)

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device) + prior_figures(folder, model, device, seed)


FAMILY = VAEFamily()
