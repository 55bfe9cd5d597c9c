"""The decoder as the encoder's mirror image.

Each encoder layer that maps shape ``a -> b`` gets a decoder layer that maps
``b -> a``, in reverse order: dense -> dense back to ``a``'s width, conv2d
-> conv-transpose2d back to ``a``'s channels (with the output padding that
lands exactly on ``a``'s height and width), maxpool -> nearest upsampling to
``a``'s size, flatten/reshape -> reshape back.  A mirrored layer carries the
activation of the encoder layer that produced ``a``, so the decoder's hidden
units match the encoder's and the last one carries the output activation
(as in the VAE article, where the same function builds both halves).
"""
from __future__ import annotations

import torch.nn as nn

from ..spec_base import LayerSpec
from .layers import (PARAMETRIC, Reshape, Shape, activation, build_batchnorm, build_dropout,
                     layer_activation, numel)


def _act(module: nn.Module, act: str) -> nn.Module:
    return module if act == "linear" else nn.Sequential(module, activation(act))


def _to_shape(module: nn.Module, shape: Shape) -> nn.Module:
    return module if len(shape) == 1 else nn.Sequential(module, Reshape(shape))


def _mirror_one(spec: LayerSpec, a: Shape, b: Shape, act: str) -> nn.Module:
    """A module mapping ``b`` back to ``a`` for encoder layer ``spec``."""
    if spec.type == "dense":
        return _to_shape(_act(nn.Linear(numel(b), numel(a)), act), a)
    if spec.type in ("conv2d", "conv-transpose2d") and len(a) == 3:
        return _act(_conv_back(spec, a, b), act)
    if spec.type in ("maxpool",):
        return nn.Upsample(size=a[1:], mode="nearest")
    if spec.type in ("upsample", "unpool"):
        return nn.AdaptiveMaxPool2d(a[1:])
    if spec.type in ("flatten", "reshape"):
        return Reshape(a)
    if spec.type == "dropout":
        return build_dropout(spec, a, "linear", "")[0]
    return build_batchnorm(spec, a, "linear", "")[0]


def _conv_back(spec: LayerSpec, a: Shape, b: Shape) -> nn.Module:
    k, s = spec.kernel, spec.stride
    p = spec.kernel // 2 if spec.padding == "same" else int(spec.padding)
    if spec.type == "conv-transpose2d":
        return nn.Conv2d(b[0], a[0], k, s, p)
    # conv-transpose output: (h - 1) * s - 2p + k + output_padding
    op = a[1] - ((b[1] - 1) * s - 2 * p + k)
    op_w = a[2] - ((b[2] - 1) * s - 2 * p + k)
    return nn.ConvTranspose2d(b[0], a[0], k, s, p, output_padding=(op, op_w))


def mirror_decoder(specs: list[LayerSpec], shapes: list[Shape], latent_dim: int,
                   hidden_default: str, output_activation: str) -> nn.Sequential:
    """Decoder mirroring an encoder built from ``specs`` whose per-layer
    shapes are ``shapes`` (``shapes[0]`` the input, ``shapes[-1]`` the
    encoder body's output).  Starts from a ``latent_dim`` vector."""
    acts = _produced_activations(specs, hidden_default, output_activation)
    body_out = shapes[-1]
    modules = [_to_shape(_act(nn.Linear(latent_dim, numel(body_out)), acts[len(specs)]), body_out)]
    for i in reversed(range(len(specs))):
        modules.append(_mirror_one(specs[i], shapes[i], shapes[i + 1], acts[i]))
    return nn.Sequential(*modules)


def _produced_activations(specs: list[LayerSpec], default: str, output: str) -> list[str]:
    """``acts[i]``: the activation of the last parametric encoder layer among
    ``specs[:i]`` (the one that produced layer i's input), or ``output`` if
    there is none -- i.e. what the mirrored layer must end with."""
    acts, current = [], output
    for spec in specs:
        acts.append(current)
        if spec.type in PARAMETRIC:
            current = layer_activation(spec, default)
    acts.append(current)
    return acts
