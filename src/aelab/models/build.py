"""The pieces families build their models from -- the encoder stack, dense
heads, the decoder (mirrored or explicit) -- and ``build_model``, which asks
the family ``spec.kind`` names to build.

Shapes are inferred layer by layer; anything that does not fit raises a
:class:`ModelSpecError` naming the layer (``model.encoder[3] (conv2d)``) and
the shapes involved.
"""
from __future__ import annotations

import math

import torch.nn as nn

from ..errors import ModelSpecError
from ..spec_base import LayerSpec
from .family import family
from .layers import (ACTIVATION_RANGE, PARAMETRIC, Reshape, Shape, activation, build_stack, fmt,
                     layer_activation, numel)
from .mirror import mirror_decoder


def head(in_shape: Shape, out: int, act: str) -> nn.Module:
    """A dense layer of ``out`` units on the (flattened) ``in_shape``."""
    linear = nn.Linear(numel(in_shape), out)
    core = linear if len(in_shape) == 1 else nn.Sequential(nn.Flatten(), linear)
    return core if act == "linear" else nn.Sequential(core, activation(act))


def encoder_stack(spec, input_shape: Shape) -> tuple[nn.Sequential, list[Shape]]:
    """``spec.encoder`` as modules, with the shape after each layer."""
    acts = [layer_activation(s, spec.activation) for s in spec.encoder]
    return build_stack(spec.encoder, input_shape, acts, "model.encoder")


def explicit_decoder(spec, layers: list[LayerSpec], input_shape: Shape, latent_in: int,
                     where: str = "model.decoder") -> nn.Module:
    """``layers`` from a ``latent_in``-wide code to ``input_shape`` (the last
    dense/conv layer carries ``spec.output_activation``)."""
    last_param = max((i for i, s in enumerate(layers) if s.type in PARAMETRIC), default=None)
    acts = [spec.output_activation if i == last_param and s.activation is None
            else layer_activation(s, spec.activation) for i, s in enumerate(layers)]
    stack, shapes = build_stack(layers, (latent_in,), acts, where)
    out = shapes[-1]
    if out == tuple(input_shape):
        return stack
    if numel(out) == numel(input_shape) and len(out) == 1:  # e.g. [..., 784] for 1x28x28 data
        return nn.Sequential(stack, Reshape(tuple(input_shape)))
    raise ModelSpecError(
        f"{where}: output shape {fmt(out)} does not match the input shape {fmt(tuple(input_shape))}")


def decoder_stack(spec, shapes: list[Shape], input_shape: Shape, latent_in: int | None = None) -> nn.Module:
    """``spec.decoder`` (``mirror`` or a layer list) from a ``latent_in``-wide
    code (default ``spec.latent_dim``; a conditional family adds its labels)
    back to ``input_shape``."""
    latent_in = spec.latent_dim if latent_in is None else latent_in
    if spec.decoder == "mirror":
        return mirror_decoder(spec.encoder, shapes, latent_in, spec.activation, spec.output_activation)
    return explicit_decoder(spec, spec.decoder, input_shape, latent_in)


def autoencoder_parts(spec, input_shape: Shape) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(body, to_latent, decoder) of an encoder / code / decoder family, made
    in the plain autoencoder's order (the decoder before the head), so one
    seed gives every such family the same initial weights."""
    body, shapes = encoder_stack(spec, input_shape)
    decoder = decoder_stack(spec, shapes, input_shape)
    return body, head(shapes[-1], spec.latent_dim, spec.latent_activation), decoder


def variational_parts(spec, input_shape: Shape) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """(body, to_mu, to_logvar, decoder) of a VAE-like family, made in the
    VAE's order (the decoder before the two heads), so one seed gives every
    such family the VAE's initial weights."""
    body, shapes = encoder_stack(spec, input_shape)
    decoder = decoder_stack(spec, shapes, input_shape)
    return body, head(shapes[-1], spec.latent_dim, "linear"), head(shapes[-1], spec.latent_dim, "linear"), decoder


def build_model(spec, input_shape: Shape, num_classes: int | None = None) -> nn.Module:
    """The ``nn.Module`` declared by ``spec`` for inputs of ``input_shape``
    (C, H, W), built by the family ``spec.kind`` names."""
    return family(spec.kind).build(spec, tuple(int(s) for s in input_shape), num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def output_range_warning(spec, value_range: tuple[float, float], tol: float = 1e-6) -> str | None:
    """A one-line warning when the output activation cannot produce the data's
    range (e.g. a sigmoid output on standardized data, as the optimizer lesson
    does): the reconstruction error then has a floor above zero."""
    if not hasattr(spec, "output_activation"):  # a family that reconstructs nothing
        return None
    lo, hi = ACTIVATION_RANGE.get(spec.output_activation, (-math.inf, math.inf))
    dmin, dmax = value_range
    if dmin < lo - tol or dmax > hi + tol:
        return (f"model.output_activation '{spec.output_activation}' produces values in "
                f"({lo:g}, {hi:g}) but the data span [{dmin:.3g}, {dmax:.3g}]: "
                f"reconstructions cannot match the data exactly")
    return None

