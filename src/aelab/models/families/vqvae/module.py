"""The VQ-VAE module and how it is built from the layer vocabulary (van den
Oord, Vinyals & Kavukcuoglu 2017, sec. 3.1, fig. 1).

x -> encoder -> z_e (latent_dim values) -> code vectors of D values -> each
replaced by its nearest codebook vector -> z_q -> decoder -> x_hat.  The
decoder is fed z_e + sg[z_q - z_e]: z_q forward, the straight-through
gradient backward (sec. 3.2).

How the latent_dim values are cut into vectors (``code_layout``):

* ``flat``: the plain autoencoder's dense head, its output read as
  latent_dim / D consecutive vectors (any encoder, dense or convolutional;
  the network is the ``ae``'s, built in its order, so one seed gives both
  the same initial weights);
* ``spatial``: the encoder's last image (C, h, w) goes through a 1x1
  convolution to D channels and every position is a vector, as the
  paper's convolutional encoders; the code is that (D, h, w) map
  flattened.  A mirrored decoder starts with the 1x1 convolution back to C
  channels instead of the dense layer; an explicit decoder gets the
  flattened map (a ``reshape`` to [D, h, w] first makes it an image again).

``embed(x)`` is z_e, the continuous code before quantisation (what latent
metrics, scatter plots and the code-fitted samplers see); ``decode(z)``
quantises z first, so any code -- a sample of a density fitted to the
codes, a point of the explorer's plane -- decodes to a VQ-VAE output, and
decode(embed(x)) is the eval-mode reconstruction, bit for bit.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ....errors import ModelSpecError
from ...build import autoencoder_parts, encoder_stack, explicit_decoder
from ...family import DECODE, EMBED
from ...layers import PARAMETRIC, Reshape, activation, fmt, layer_activation
from ...mirror import mirror_decoder
from .quantizer import VectorQuantizer


class VQVAE(nn.Module):
    """Encoder, vector quantiser, decoder.  ``grid`` is (h, w) for the
    spatial layout (the code is a (D, h, w) map), None for the flat one."""

    kind = "vqvae"
    capabilities = frozenset({EMBED, DECODE})

    def __init__(self, body: nn.Module, to_latent: nn.Module, decoder: nn.Module, quantizer: VectorQuantizer,
                 latent_dim: int, grid: tuple[int, int] | None = None):
        super().__init__()
        self.body, self.to_latent, self.decoder, self.quantizer = body, to_latent, decoder, quantizer
        self.latent_dim, self.grid = latent_dim, grid

    # ------------------------------------------------ code <-> vectors
    def vectors(self, z: torch.Tensor) -> torch.Tensor:
        """The code vectors of codes ``z`` (B, latent_dim): (B, M, D)."""
        d = self.quantizer.dim
        if self.grid is None:
            return z.reshape(len(z), -1, d)
        return z.reshape(len(z), d, -1).transpose(1, 2)  # (B, D, h*w) -> (B, h*w, D)

    def codes(self, v: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`vectors`: (B, M, D) -> (B, latent_dim)."""
        return (v if self.grid is None else v.transpose(1, 2)).reshape(len(v), -1)

    # ------------------------------------------------ the model
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z_e(x): (B, latent_dim)."""
        return self.to_latent(self.body(x))

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_q, indices): each code vector of ``z`` replaced by its nearest
        codebook vector, (B, latent_dim), and the codes' indices (B, M)."""
        indices = self.quantizer.nearest(self.vectors(z))
        return self.codes(self.quantizer.lookup(indices)), indices

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's image of the quantised ``z`` (B, latent_dim), fed
        as z + sg[z_q - z] like the training forward: the values are z_q's,
        the gradient w.r.t. ``z`` the straight-through one (latent-space
        optimisation follows it; an argmin alone has none)."""
        z_q = self.quantize(z)[0].detach()
        return self.decoder(z + (z_q - z).detach())

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x_hat`` decoded from z_e + sg[z_q - z_e], ``z`` = z_e, ``z_q``
        (with the gradient to a learned codebook) and the ``indices``.  In
        training mode with gradients on, an EMA codebook then takes its
        step on this batch (z_q is the codebook before it, as Sonnet's);
        never in eval mode or under no_grad (validation, metrics)."""
        z_e = self.encode(x)
        z_q, indices = self.quantize(z_e)
        if self.quantizer.ema and self.training and torch.is_grad_enabled():
            self.quantizer.ema_update(self.vectors(z_e.detach()), indices)
        x_hat = self.decoder(z_e + (z_q - z_e).detach())
        return {"x_hat": x_hat, "z": z_e, "z_q": z_q, "indices": indices}


# ------------------------------------------------------------------ building


def quantizer_of(spec) -> VectorQuantizer:
    return VectorQuantizer(spec.codebook_size, spec.vector_dim(), spec.codebook == "ema", spec.decay, spec.epsilon)


def build_vqvae(spec, input_shape) -> VQVAE:
    """The module of ``spec`` for inputs ``input_shape``; the codebook is
    drawn after the network, so a flat VQ-VAE's network starts as the ``ae``'s."""
    if spec.code_layout == "flat":
        body, to_latent, decoder = autoencoder_parts(spec, input_shape)
        return VQVAE(body, to_latent, decoder, quantizer_of(spec), spec.latent_dim)
    body, shapes = encoder_stack(spec, input_shape)
    c, h, w = spatial_shape(spec, shapes[-1])
    d = spec.vector_dim()
    decoder = spatial_decoder(spec, shapes, input_shape, (d, h, w))
    to_latent = nn.Sequential(nn.Conv2d(c, d, 1), activation(spec.latent_activation), nn.Flatten())
    return VQVAE(body, to_latent, decoder, quantizer_of(spec), spec.latent_dim, grid=(h, w))


def spatial_shape(spec, body_out) -> tuple[int, int, int]:
    """The encoder's last image (C, h, w), checked against latent_dim = D*h*w."""
    if len(body_out) != 3:
        raise ModelSpecError(f"model.code_layout: spatial quantises the positions of the encoder's last image "
                             f"(C, H, W), but the encoder ends in {fmt(tuple(body_out))}: end it with a conv2d "
                             f"layer or use code_layout flat")
    c, h, w = body_out
    d = spec.vector_dim()
    if spec.latent_dim != d * h * w:
        raise ModelSpecError(f"model.latent_dim: a spatial code of {h}x{w} positions of embedding_dim {d} has "
                             f"{d * h * w} values: expected latent_dim {d * h * w}, got {spec.latent_dim}")
    return c, h, w


def spatial_decoder(spec, shapes, input_shape, code_shape: tuple[int, int, int]) -> nn.Module:
    """The decoder from the flattened (D, h, w) code: the mirror with a 1x1
    convolution back to the encoder's C channels in place of its first
    dense layer, or the explicit layers from the flat code."""
    if spec.decoder != "mirror":
        return explicit_decoder(spec, spec.decoder, input_shape, spec.latent_dim)
    decoder = mirror_decoder(spec.encoder, shapes, spec.latent_dim, spec.activation, spec.output_activation)
    decoder[0] = nn.Sequential(Reshape(code_shape), nn.Conv2d(code_shape[0], shapes[-1][0], 1),
                               activation(last_activation(spec)))
    return decoder


def last_activation(spec) -> str:
    """The activation of the encoder's last dense/conv layer (the one the
    mirror's first layer repeats), or the output's if there is none."""
    layers = [s for s in spec.encoder if s.type in PARAMETRIC]
    return layer_activation(layers[-1], spec.activation) if layers else spec.output_activation
