"""A population of networks evaluated as ONE batched computation.

Every individual is a flat vector of all the model's weights and biases
(the GA paper's direct encoding); a population is a ``(P, n)`` tensor.  The
model's layers are re-run for all P individuals at once:

* dense layers as batched matrix products (``baddbmm``);
* convolutions as im2col (``unfold``) + batched matmul -- and while the
  input is still the same for every individual (the first layer) the im2col
  is computed once and shared;
* transposed convolutions as batched matmul + col2im (``fold``);
* pooling, upsampling, reshapes and activations on the merged (P*N) batch.

No Python loop runs over individuals or genes.  Tensors carry a leading
population axis: ``(P, N, ...)``; a shared input has P == 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.autoencoder import Autoencoder
from ..models.layers import Reshape

Tensor = torch.Tensor
CHUNK_ELEMENTS = 2_000_000  # input elements (individuals x samples x pixels) per batched pass


class Population:
    """Maps flat parameter vectors to a model's parameters, and runs the
    model for a whole population of such vectors."""

    def __init__(self, model: nn.Module):
        if not isinstance(model, Autoencoder):
            raise ConfigError(f"train.method: evolution trains plain autoencoders (model.kind: ae), "
                              f"not {getattr(model, 'kind', type(model).__name__)}")
        self.model = model.eval()
        self.names, self.shapes, self.offsets = [], [], [0]
        for name, p in model.named_parameters():
            self.names.append(name)
            self.shapes.append(tuple(p.shape))
            self.offsets.append(self.offsets[-1] + p.numel())
        self.size = self.offsets[-1]
        if self.size == 0:
            raise ConfigError("model: has no trainable parameters to evolve")
        self._param_of = {id(p): i for i, (_, p) in enumerate(model.named_parameters())}

    # ------------------------------------------------------------ vectors
    def vector(self) -> Tensor:
        """The model's current parameters as one flat vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])

    def load(self, v: Tensor) -> None:
        """Write the flat vector ``v`` into the model's parameters."""
        with torch.no_grad():
            for p, a, b in zip(self.model.parameters(), self.offsets, self.offsets[1:]):
                p.copy_(v[a:b].view_as(p))

    def _slice(self, P: Tensor, param: nn.Parameter) -> Tensor:
        i = self._param_of[id(param)]
        return P[:, self.offsets[i]:self.offsets[i + 1]].reshape(len(P), *self.shapes[i])

    # ------------------------------------------------------------ forward
    @torch.no_grad()
    def reconstruct(self, P: Tensor, x: Tensor) -> Tensor:
        """Reconstructions of ``x`` (N, C, H, W) by every individual: (P, N, C, H, W)."""
        h = x.unsqueeze(0)  # (1, N, C, H, W): shared by all individuals
        for part in (self.model.body, self.model.to_latent, self.model.decoder):
            h = self._run(part, P, h)
        return h.expand(len(P), *h.shape[1:]) if h.shape[0] == 1 else h

    def _run(self, module: nn.Module, P: Tensor, h: Tensor) -> Tensor:
        if isinstance(module, nn.Sequential):
            for child in module:
                h = self._run(child, P, h)
            return h
        layer = _LAYERS.get(type(module))
        if layer is None:
            return _per_sample(module, h)
        return layer(self, module, P, h)

    @torch.no_grad()
    def fitness(self, P: Tensor, x: Tensor, kind: str = "mae") -> Tensor:
        """Reconstruction error of each individual (P,): mean absolute error
        (the GA paper's fitness) or mean squared error; lower is better.
        Individuals are scored in chunks whose activations stay cache-sized:
        one huge batched pass is memory-bound (measured 3x slower for a
        784-64-784 AE at P=50 on 256 images than chunks of 10)."""
        step = max(1, CHUNK_ELEMENTS // max(1, x[0].numel() * len(x)))
        return torch.cat([self._fitness(P[i:i + step], x, kind) for i in range(0, len(P), step)])

    def _fitness(self, P: Tensor, x: Tensor, kind: str) -> Tensor:
        err = self.reconstruct(P, x) - x.unsqueeze(0)
        return (err.abs() if kind == "mae" else err.square()).flatten(1).mean(1)


def _per_sample(module: nn.Module, h: Tensor) -> Tensor:
    """A parameter-free layer applied to the merged (P*N) batch."""
    out = module(h.reshape(-1, *h.shape[2:]))
    return out.reshape(h.shape[0], h.shape[1], *out.shape[1:])


def _linear(pop: Population, m: nn.Linear, P: Tensor, h: Tensor) -> Tensor:
    w = pop._slice(P, m.weight)  # (P, out, in)
    b = pop._slice(P, m.bias).unsqueeze(1) if m.bias is not None else P.new_zeros(len(P), 1, w.shape[1])
    return torch.baddbmm(b, h.expand(len(P), *h.shape[1:]), w.transpose(1, 2))  # (P, N, out)


def _conv2d(pop: Population, m: nn.Conv2d, P: Tensor, h: Tensor) -> Tensor:
    w = pop._slice(P, m.weight)  # (P, out, C, k, k)
    b = pop._slice(P, m.bias) if m.bias is not None else None
    return _batched_conv(w, b, h, m.stride, m.padding)


def _batched_conv(w: Tensor, b: Tensor | None, h: Tensor, s, pad) -> Tensor:
    """Per-individual conv2d: im2col + batched matmul.  (P', N, C, H, W) -> (P, N, out, OH, OW)."""
    n, (c, hh, ww), k = h.shape[1], h.shape[2:], w.shape[-2:]
    oh = (hh + 2 * pad[0] - k[0]) // s[0] + 1
    ow = (ww + 2 * pad[1] - k[1]) // s[1] + 1
    cols = F.unfold(h.reshape(-1, c, hh, ww), k, padding=pad, stride=s)  # (P'*N, C*k*k, L)
    w = w.flatten(2)  # (P, out, C*k*k)
    if h.shape[0] == 1:  # shared input: one im2col for everybody
        out = torch.matmul(w.unsqueeze(1), cols.unsqueeze(0))  # (P, N, out, L)
    else:
        out = torch.matmul(w.unsqueeze(1), cols.view(len(w), n, *cols.shape[1:]))
    if b is not None:
        out = out + b[:, None, :, None]
    return out.view(len(w), n, -1, oh, ow)


def _conv_transpose2d(pop: Population, m: nn.ConvTranspose2d, P: Tensor, h: Tensor) -> Tensor:
    """Per-individual transposed conv as ONE grouped conv_transpose2d: the
    population is folded into the channel axis (groups = P).  Measured 2-4x
    faster than matmul + col2im for the GA paper's decoder."""
    h = h.expand(len(P), *h.shape[1:])
    n, c = h.shape[1], h.shape[2]
    x = h.transpose(0, 1).reshape(n, len(P) * c, *h.shape[3:])  # (N, P*Cin, H, W)
    w = pop._slice(P, m.weight).reshape(len(P) * c, *m.weight.shape[1:])  # (P*Cin, Cout, k, k)
    b = pop._slice(P, m.bias).reshape(-1) if m.bias is not None else None
    out = F.conv_transpose2d(x, w, b, m.stride, m.padding, m.output_padding, groups=len(P))
    return out.view(n, len(P), -1, *out.shape[2:]).transpose(0, 1)  # (P, N, Cout, OH, OW)


def _batchnorm(pop: Population, m: nn.modules.batchnorm._BatchNorm, P: Tensor, h: Tensor) -> Tensor:
    """Eval-mode batch norm: running statistics shared, scale and shift evolved."""
    extra = (1,) * (h.dim() - 3)
    mean = m.running_mean.view(1, 1, -1, *extra)
    std = torch.sqrt(m.running_var.view(1, 1, -1, *extra) + m.eps)
    out = (h - mean) / std
    if m.affine:
        out = out * pop._slice(P, m.weight).view(len(P), 1, -1, *extra) + \
            pop._slice(P, m.bias).view(len(P), 1, -1, *extra)
    return out


def _reshape(pop: Population, m: nn.Module, P: Tensor, h: Tensor) -> Tensor:
    shape = m.shape if isinstance(m, Reshape) else m.unflattened_size
    return h.reshape(h.shape[0], h.shape[1], *shape)


def _flatten(pop: Population, m: nn.Flatten, P: Tensor, h: Tensor) -> Tensor:
    return h.flatten(2)


def _elementwise(pop: Population, m: nn.Module, P: Tensor, h: Tensor) -> Tensor:
    return h if isinstance(m, (nn.Identity, nn.Dropout)) else m(h)


_LAYERS = {
    nn.Linear: _linear, nn.Conv2d: _conv2d, nn.ConvTranspose2d: _conv_transpose2d,
    nn.BatchNorm1d: _batchnorm, nn.BatchNorm2d: _batchnorm, Reshape: _reshape, nn.Unflatten: _reshape,
    nn.Flatten: _flatten, nn.Identity: _elementwise, nn.Dropout: _elementwise, nn.ReLU: _elementwise,
    nn.LeakyReLU: _elementwise, nn.ELU: _elementwise, nn.GELU: _elementwise, nn.Tanh: _elementwise,
    nn.Sigmoid: _elementwise,
}


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_finite(values: Tensor) -> Tensor:
    """Non-finite fitness becomes +inf, so such an individual is never selected."""
    return torch.where(torch.isfinite(values), values, torch.full_like(values, math.inf))
