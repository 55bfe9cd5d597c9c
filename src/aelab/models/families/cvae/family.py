"""``kind: cvae``: the conditional VAE (Sohn, Lee & Yan 2015, "Learning
Structured Output Representation using Deep Conditional Generative Models").

The one-hot label ``y`` joins the encoder's features before the ``mu`` /
``logvar`` heads (q(z|x, y)) and the code before the decoder (p(x|z, y));
the loss is the conditional negative ELBO, eq. 4 of the paper:
``-E_q[log p(x|z, y)] + beta * KL(q(z|x, y) || N(0, I))``.  Because the
decoder is told the class, the code is free to hold what the label does not
(style), and ``sample(n, y)`` draws a digit of the class asked for.  A
probability vector is accepted wherever a label is (a soft condition), which
is how LSO conditions it on its target.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ....errors import ModelSpecError
from ....evaluation import autoencoder_metrics, elbo_metrics, eval_split
from ....figures import autoencoder_figures, class_grid
from ...autoencoder import VAE
from ...build import decoder_stack, encoder_stack, head
from ...conditioning import one_hot, sample_classes
from ...family import CONDITIONAL, DECODE, EMBED, GENERATIVE
from ...layers import numel
from ..vae.family import VAEFamily


class CVAE(nn.Module):
    """(x, y) -> body -> [features, onehot(y)] -> (mu, logvar); (z, y) ->
    [z, onehot(y)] -> decoder -> x_hat."""

    kind = "cvae"
    capabilities = frozenset({EMBED, DECODE, GENERATIVE, CONDITIONAL})
    # what fused training stacks (aelab.training.fused.stack.layout): these
    # parts, under the fused losses' conditional ELBO
    fused_layout = (("body", "to_mu", "to_logvar", "decoder"), "conditional")

    def __init__(self, body: nn.Module, to_mu: nn.Module, to_logvar: nn.Module, decoder: nn.Module,
                 latent_dim: int, num_classes: int):
        super().__init__()
        self.body, self.to_mu, self.to_logvar, self.decoder = body, to_mu, to_logvar, decoder
        self.latent_dim, self.num_classes = latent_dim, num_classes

    def condition(self, y: torch.Tensor) -> torch.Tensor:
        """Labels (B,) -> one-hot (B, K); probability vectors (B, K) pass as they are."""
        return one_hot(y, self.num_classes)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.body(x).flatten(1), self.condition(y)], dim=1)  # (B, features + K)
        return self.to_mu(h), self.to_logvar(h)                              # (B, latent) each

    reparameterize = staticmethod(VAE.reparameterize)  # z = mu + exp(logvar / 2) * eps

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, latent), (B,) -> (B, C, H, W)
        return self.decoder(torch.cat([z, self.condition(y).to(z.dtype)], dim=1))

    def embed(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.encode(x, y)[0]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x, y)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return {"x_hat": self.decode(z, y), "z": z, "mu": mu, "logvar": logvar}

    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` prior draws, of class ``y`` (labels or probability
        vectors; default: the classes in turn, 0, 1, ..., K-1, 0, ...)."""
        return sample_classes(self, n, y, generator)


class CVAEFamily(VAEFamily):
    kind = "cvae"
    fuses_as = "conditional"  # training/fused/losses.py computes this objective for stacked members
    description = "conditional VAE: encoder and decoder see the one-hot label; sample(n, y) draws a chosen class"
    capabilities = CVAE.capabilities
    needs_labels = True

    def build(self, spec, input_shape, num_classes):
        if not num_classes:
            raise ModelSpecError("model.kind: cvae conditions on labels; the data set has none")
        body, shapes = encoder_stack(spec, input_shape)
        features = (numel(shapes[-1]) + num_classes,)
        return CVAE(body, head(features, spec.latent_dim, "linear"), head(features, spec.latent_dim, "linear"),
                    decoder_stack(spec, shapes, input_shape, latent_in=spec.latent_dim + num_classes),
                    spec.latent_dim, num_classes)

    def metrics(self, model, cfg, data, device):
        x, y, _ = eval_split(data)
        return autoencoder_metrics(model, cfg, data, device) | elbo_metrics(model, x, cfg.train.loss, device,
                                                                            cfg.eval.seed, y=y)

    def figures(self, folder, model, data, device, seed):
        return autoencoder_figures(folder, model, data, device) + [class_grid(folder, model, device, seed)]


FAMILY = CVAEFamily()
