"""Layer vocabulary -> ``nn.Module`` with shape inference.

Every builder takes the shape flowing in (without the batch axis) and
returns the module and the shape flowing out, so a spec that does not fit
fails while the model is built, with one line naming the layer, instead of
deep inside the first forward pass.  Shapes are channels-first: an image is
``(C, H, W)``, a vector ``(D,)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch.nn as nn

from ..errors import ModelSpecError
from ..spec_base import LayerSpec

Shape = tuple[int, ...]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softmax": lambda: nn.Softmax(dim=1),
    "linear": nn.Identity,
}

# The open interval each output activation can produce; used to warn when the
# data's range cannot be represented (e.g. a sigmoid on standardized data).
ACTIVATION_RANGE = {
    "sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0),
    "relu": (0.0, math.inf), "elu": (-1.0, math.inf), "gelu": (-0.17, math.inf),
}

PARAMETRIC = ("dense", "conv2d", "conv-transpose2d")


def activation(name: str) -> nn.Module:
    """The activation module for ``name`` (``linear`` is the identity)."""
    return ACTIVATIONS[name]()


def numel(shape: Shape) -> int:
    return math.prod(shape)


def fmt(shape: Shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


class LayerError(ModelSpecError):
    pass


def _need_image(shape: Shape, where: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise LayerError(f"{where}: expects an image input (C, H, W), got {fmt(shape)}")
    return shape  # type: ignore[return-value]


def _padding(spec: LayerSpec, where: str) -> int:
    if spec.padding == "same":
        if spec.kernel % 2 == 0:
            raise LayerError(f"{where}: padding 'same' needs an odd kernel, got {spec.kernel}")
        return spec.kernel // 2
    return int(spec.padding)


def _with_act(core: nn.Module, act: str) -> nn.Module:
    return core if act == "linear" else nn.Sequential(core, activation(act))


def build_dense(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    core = nn.Linear(numel(shape), spec.units)
    if len(shape) > 1:  # dense on an image flattens it first
        core = nn.Sequential(nn.Flatten(), core)
    return _with_act(core, act), (spec.units,)


def build_conv2d(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    c, h, w = _need_image(shape, where)
    p, k, s = _padding(spec, where), spec.kernel, spec.stride
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    if oh < 1 or ow < 1:
        raise LayerError(f"{where}: kernel {k} (padding {p}) does not fit input {fmt(shape)}")
    return _with_act(nn.Conv2d(c, spec.filters, k, s, p), act), (spec.filters, oh, ow)


def build_conv_transpose2d(spec: LayerSpec, shape: Shape, act: str, where: str,
                           output_padding: int = 0) -> tuple[nn.Module, Shape]:
    c, h, w = _need_image(shape, where)
    p, k, s = _padding(spec, where), spec.kernel, spec.stride
    oh, ow = (h - 1) * s - 2 * p + k + output_padding, (w - 1) * s - 2 * p + k + output_padding
    if oh < 1 or ow < 1:
        raise LayerError(f"{where}: padding {p} leaves no output for input {fmt(shape)}")
    core = nn.ConvTranspose2d(c, spec.filters, k, s, p, output_padding=output_padding)
    return _with_act(core, act), (spec.filters, oh, ow)


def build_maxpool(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    c, h, w = _need_image(shape, where)
    if h < spec.size or w < spec.size:
        raise LayerError(f"{where}: pool size {spec.size} does not fit input {fmt(shape)}")
    return _with_act(nn.MaxPool2d(spec.size), act), (c, h // spec.size, w // spec.size)


def build_upsample(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    """``upsample`` and ``unpool`` both repeat each pixel ``size`` times along
    H and W (nearest-neighbour unpooling, as in the GA paper's decoder)."""
    c, h, w = _need_image(shape, where)
    out = (c, h * spec.size, w * spec.size)
    return _with_act(nn.Upsample(size=out[1:], mode="nearest"), act), out


def build_flatten(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    return _with_act(nn.Flatten(), act), (numel(shape),)


def build_reshape(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    target = tuple(spec.shape)
    if numel(target) != numel(shape):
        raise LayerError(
            f"{where}: cannot reshape {fmt(shape)} ({numel(shape)} values) "
            f"into {fmt(target)} ({numel(target)} values)")
    return _with_act(nn.Unflatten(1, target) if len(shape) == 1 else Reshape(target), act), target


def build_dropout(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    return _with_act(nn.Dropout(spec.rate), act), shape


def build_batchnorm(spec: LayerSpec, shape: Shape, act: str, where: str) -> tuple[nn.Module, Shape]:
    if len(shape) not in (1, 3):
        raise LayerError(f"{where}: batchnorm expects (D,) or (C, H, W), got {fmt(shape)}")
    core = nn.BatchNorm1d(shape[0]) if len(shape) == 1 else nn.BatchNorm2d(shape[0])
    return _with_act(core, act), shape


class Reshape(nn.Module):
    """Reshape every sample to ``shape`` (batch axis kept)."""

    def __init__(self, shape: Shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):  # (B, *in) -> (B, *shape)
        return x.reshape(x.shape[0], *self.shape)


@dataclass(frozen=True)
class Layer:
    """One word of the layer vocabulary, with everything that has to know it.

    ``build`` makes the module (and the shape after it); ``modules`` are the
    torch classes it makes (its activation aside); ``population`` names the
    rule that runs it for a whole population at once
    (:data:`aelab.training.population.RULES`); ``mutants`` says how the
    GA's sparse mutants pass it (:mod:`aelab.training.mutants`):
    ``weighted`` (a changed weight corrects one unit), ``free`` (no
    weights: the rows pass through), or None (no sparse rule: a network
    with it scores its mutants densely)."""

    build: Callable | None
    modules: tuple[type, ...]
    population: str
    mutants: str | None


LAYERS: dict[str, Layer] = {
    "dense": Layer(build_dense, (nn.Linear,), "linear", "weighted"),
    "conv2d": Layer(build_conv2d, (nn.Conv2d,), "conv2d", "weighted"),
    "conv-transpose2d": Layer(build_conv_transpose2d, (nn.ConvTranspose2d,), "conv_transpose2d", "weighted"),
    "maxpool": Layer(build_maxpool, (nn.MaxPool2d,), "per_sample", "free"),
    "upsample": Layer(build_upsample, (nn.Upsample,), "per_sample", "free"),
    "unpool": Layer(build_upsample, (nn.Upsample,), "per_sample", "free"),
    "flatten": Layer(build_flatten, (nn.Flatten,), "flatten", "free"),
    "reshape": Layer(build_reshape, (nn.Unflatten, Reshape), "reshape", "free"),
    "dropout": Layer(build_dropout, (nn.Dropout,), "elementwise", "free"),  # populations score in eval mode
    "batchnorm": Layer(build_batchnorm, (nn.BatchNorm1d, nn.BatchNorm2d), "batchnorm", None),
}
# What the mirrored decoder makes beyond the vocabulary (aelab.models.mirror):
# the inverse of an upsampling, a max pool to the mirrored layer's size.
MIRROR_LAYERS: dict[str, Layer] = {
    "pool-to-size": Layer(None, (nn.AdaptiveMaxPool2d,), "per_sample", "free"),
}
# What the activations make: elementwise, so one call covers every individual.
ACTIVATION_LAYERS: dict[str, Layer] = {
    name: Layer(None, (type(activation(name)),), "per_sample" if name == "softmax" else "elementwise",
                None if name == "softmax" else "free")
    for name in ACTIVATIONS}
BUILDERS = {name: layer.build for name, layer in LAYERS.items()}


def module_rules() -> dict[type, Layer]:
    """Every torch class the vocabulary makes -> its entry (population and mutants read this)."""
    every = (*LAYERS.values(), *MIRROR_LAYERS.values(), *ACTIVATION_LAYERS.values())
    return {cls: layer for layer in every for cls in layer.modules}


def layer_activation(spec: LayerSpec, default: str) -> str:
    """The activation a layer applies: its own, else ``default`` for
    dense/conv layers, else linear."""
    if spec.activation is not None:
        return spec.activation
    return default if spec.type in PARAMETRIC else "linear"


def build_stack(specs: list[LayerSpec], shape: Shape, acts: list[str], where: str
                ) -> tuple[nn.Sequential, list[Shape]]:
    """Build ``specs`` in order from ``shape``; returns the stack and the
    shape after each layer (``shapes[0]`` is the input shape)."""
    modules, shapes = [], [tuple(shape)]
    for i, (spec, act) in enumerate(zip(specs, acts)):
        label = f"{where}[{i}] ({spec.type})"
        module, out = BUILDERS[spec.type](spec, shapes[-1], act, label)
        modules.append(module)
        shapes.append(out)
    return nn.Sequential(*modules), shapes
