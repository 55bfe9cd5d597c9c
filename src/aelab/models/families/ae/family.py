"""``kind: ae``: x -> encoder -> z -> decoder -> x_hat, trained on the mean
reconstruction loss (as Keras reports it)."""
from __future__ import annotations

from ....evaluation import autoencoder_metrics
from ....figures import autoencoder_figures
from ....training.objectives import ae_objective
from ...autoencoder import Autoencoder
from ...build import decoder_stack, encoder_stack, head
from ...family import DECODE, EMBED, Family

RECONSTRUCTION = ("recon_mse", "recon_mae", "recon_bce")
LATENT = ("silhouette", "nmi", "ari", "cluster_acc", "knn_acc", "trustworthiness")


class AutoencoderFamily(Family):
    kind = "ae"
    fuses_as = "reconstruct"  # training/fused/losses.py computes this objective for stacked members
    description = "autoencoder: encoder -> latent code -> decoder, trained on the reconstruction loss"
    capabilities = frozenset({EMBED, DECODE})
    metric_names = RECONSTRUCTION + LATENT
    methods = ("gradient", "ga", "es")  # GA/ES evolve a plain autoencoder's weights

    def build(self, spec, input_shape, num_classes):
        body, shapes = encoder_stack(spec, input_shape)
        decoder = decoder_stack(spec, shapes, input_shape)  # before the head: a seed initializes as it always did
        return Autoencoder(body, head(shapes[-1], spec.latent_dim, spec.latent_activation), decoder)

    def objective(self, spec, train):
        return ae_objective(train.loss)

    def metrics(self, model, cfg, data, device):
        return autoencoder_metrics(model, cfg, data, device)

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device)


FAMILY = AutoencoderFamily()
