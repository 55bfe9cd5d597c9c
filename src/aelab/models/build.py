"""Build an ``Autoencoder``, ``VAE`` or ``Classifier`` from a :class:`ModelSpec`.

Shapes are inferred layer by layer; anything that does not fit raises a
:class:`ModelSpecError` naming the layer (``model.encoder[3] (conv2d)``) and
the shapes involved.
"""
from __future__ import annotations

import math

import torch.nn as nn

from ..errors import ModelSpecError
from ..spec import LayerSpec, ModelSpec
from .autoencoder import VAE, Autoencoder, Classifier
from .layers import (ACTIVATION_RANGE, PARAMETRIC, Reshape, Shape, activation, build_stack, fmt,
                     layer_activation, numel)
from .mirror import mirror_decoder


def _head(in_shape: Shape, out: int, act: str) -> nn.Module:
    linear = nn.Linear(numel(in_shape), out)
    core = linear if len(in_shape) == 1 else nn.Sequential(nn.Flatten(), linear)
    return core if act == "linear" else nn.Sequential(core, activation(act))


def _encoder(spec: ModelSpec, input_shape: Shape) -> tuple[nn.Sequential, list[Shape]]:
    acts = [layer_activation(s, spec.activation) for s in spec.encoder]
    return build_stack(spec.encoder, input_shape, acts, "model.encoder")


def _explicit_decoder(spec: ModelSpec, layers: list[LayerSpec], input_shape: Shape) -> nn.Module:
    last_param = max((i for i, s in enumerate(layers) if s.type in PARAMETRIC), default=None)
    acts = [spec.output_activation if i == last_param and s.activation is None
            else layer_activation(s, spec.activation) for i, s in enumerate(layers)]
    stack, shapes = build_stack(layers, (spec.latent_dim,), acts, "model.decoder")
    out = shapes[-1]
    if out == tuple(input_shape):
        return stack
    if numel(out) == numel(input_shape) and len(out) == 1:  # e.g. [..., 784] for 1x28x28 data
        return nn.Sequential(stack, Reshape(tuple(input_shape)))
    raise ModelSpecError(
        f"model.decoder: output shape {fmt(out)} does not match the input shape {fmt(tuple(input_shape))}")


def _decoder(spec: ModelSpec, shapes: list[Shape], input_shape: Shape) -> nn.Module:
    if spec.decoder == "mirror":
        return mirror_decoder(spec.encoder, shapes, spec.latent_dim, spec.activation,
                              spec.output_activation)
    return _explicit_decoder(spec, spec.decoder, input_shape)


def build_model(spec: ModelSpec, input_shape: Shape, num_classes: int | None = None) -> nn.Module:
    """The ``nn.Module`` declared by ``spec`` for inputs of ``input_shape`` (C, H, W)."""
    input_shape = tuple(int(s) for s in input_shape)
    body, shapes = _encoder(spec, input_shape)
    if spec.kind == "classifier":
        k = spec.num_classes or num_classes
        if not k:
            raise ModelSpecError("model.num_classes: a classifier needs the number of classes "
                                 "(set model.num_classes or use labelled data)")
        return Classifier(body, _head(shapes[-1], k, "linear"))
    decoder = _decoder(spec, shapes, input_shape)
    if spec.kind == "vae":
        return VAE(body, _head(shapes[-1], spec.latent_dim, "linear"),
                   _head(shapes[-1], spec.latent_dim, "linear"), decoder, spec.latent_dim)
    return Autoencoder(body, _head(shapes[-1], spec.latent_dim, spec.latent_activation), decoder)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def output_range_warning(spec: ModelSpec, value_range: tuple[float, float], tol: float = 1e-6) -> str | None:
    """A one-line warning when the output activation cannot produce the data's
    range (e.g. a sigmoid output on standardized data, as the optimizer lesson
    does): the reconstruction error then has a floor above zero."""
    if spec.kind == "classifier":
        return None
    lo, hi = ACTIVATION_RANGE.get(spec.output_activation, (-math.inf, math.inf))
    dmin, dmax = value_range
    if dmin < lo - tol or dmax > hi + tol:
        return (f"model.output_activation '{spec.output_activation}' produces values in "
                f"({lo:g}, {hi:g}) but the data span [{dmin:.3g}, {dmax:.3g}]: "
                f"reconstructions cannot match the data exactly")
    return None
