"""Autoencoder, VAE and Classifier modules.

Names follow the papers: ``encode`` / ``decode``; for the VAE ``mu``,
``logvar``, ``reparameterize`` and ``kld`` (Kingma & Welling 2014, "Auto-
Encoding Variational Bayes", eq. 10 and appendix B).  Every model has
``embed(x)``: the deterministic code used for latent-space metrics (the
latent vector for an AE, ``mu`` for a VAE, the penultimate features for a
classifier), and ``capabilities``: what it can do
(:mod:`aelab.models.family`).
"""
from __future__ import annotations

import torch
import torch.nn as nn


class Autoencoder(nn.Module):
    """x -> body -> z (latent_dim) -> decoder -> x_hat."""

    kind = "ae"
    capabilities = frozenset({"embed", "decode"})

    def __init__(self, body: nn.Module, to_latent: nn.Module, decoder: nn.Module):
        super().__init__()
        self.body, self.to_latent, self.decoder = body, to_latent, decoder
        self.latent_dim = [m for m in to_latent.modules() if isinstance(m, nn.Linear)][-1].out_features

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, latent)
        return self.to_latent(self.body(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent) -> (B, C, H, W)
        return self.decoder(z)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encode(x)
        return {"x_hat": self.decode(z), "z": z}


class VAE(nn.Module):
    """x -> body -> (mu, logvar) -> z = mu + sigma * eps -> decoder -> x_hat."""

    kind = "vae"
    capabilities = frozenset({"embed", "decode", "generative"})

    def __init__(self, body: nn.Module, to_mu: nn.Module, to_logvar: nn.Module, decoder: nn.Module,
                 latent_dim: int):
        super().__init__()
        self.body, self.to_mu, self.to_logvar, self.decoder = body, to_mu, to_logvar, decoder
        self.latent_dim = latent_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.to_mu(h), self.to_logvar(h)  # (B, latent) each

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (Kingma & Welling, sec. 2.4)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return {"x_hat": self.decode(z), "z": z, "mu": mu, "logvar": logvar}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I)."""
        dev = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(dev)
        return self.decode(z)


def kld(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(q(z|x) || N(0, I)) = -1/2 * sum(1 + logvar - mu^2 - exp(logvar))
    (Kingma & Welling 2014, appendix B).  Shape (B,)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


class Classifier(nn.Module):
    """x -> body -> logits (num_classes)."""

    kind = "classifier"
    capabilities = frozenset({"classify", "embed"})

    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body, self.head = body, head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.head(self.body(x))}

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.forward(x)["logits"], dim=1)
