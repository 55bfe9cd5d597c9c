"""Children that differ from ONE parent in a few weights, evaluated as the
parent's network plus exact sparse corrections.

The GA paper's scheme (every child a copy of the best with k of its ~4,000
weights changed) makes a population that is one parent and a handful of
weight changes.  Running it as P unrelated networks (grouped convolutions
with P different kernels) wastes the structure: here every layer runs ONCE
with the parent's weights over all children's activations -- a plain
convolution or matrix product over the merged (P*N) batch, the shape the
CPU/GPU libraries are fastest at -- and each changed weight adds its own
term, which is exact because every parameterised layer is linear in its
weights:

    layer(h_c; W + dW_c) = layer(h_c; W) + layer(h_c; dW_c)

and ``layer(h_c; dW_c)`` for ONE changed weight touches one output unit
(dense), or one output channel through one input channel at one kernel
offset (convolution): a gather of the input and a scatter-add, no
multiply-add over the full layer.  Before the first changed layer every
child's activations equal the parent's, so the layers above it run on the
N inputs once.

Only Linear, Conv2d, ConvTranspose2d and (nearest upsampling, transposed
convolution) pairs carry weights here; :func:`supports` says whether a
network qualifies (else :class:`~aelab.training.population.Population`
falls back to its general path).  A nearest upsampling followed by a
stride-1 transposed convolution runs as one sub-pixel convolution
(:mod:`aelab.training.subpixel`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.layers import module_rules
from . import subpixel

Tensor = torch.Tensor
WEIGHTED = tuple(cls for cls, layer in module_rules().items() if layer.mutants == "weighted")
_FREE = tuple(cls for cls, layer in module_rules().items() if layer.mutants == "free")


@dataclass
class Mutants:
    """A population of ``size`` rows: row r is ``parent`` with
    ``parent[index[j]] += delta[j]`` for every j where ``rows[j] == r``
    (repeated indices add up, as ``scatter_add_`` does)."""
    parent: Tensor  # (n,)
    size: int
    rows: Tensor    # (J,) long, in [0, size)
    index: Tensor   # (J,) long, in [0, n)
    delta: Tensor   # (J,)

    def dense(self) -> Tensor:
        """The (size, n) population these mutants stand for."""
        out = self.parent.expand(self.size, -1).clone()
        return out.index_put_((self.rows, self.index), self.delta, accumulate=True)

    def row(self, i: Tensor) -> Tensor:
        """Individual ``i`` (a one-element index tensor) as a vector (fixed
        shapes, so no host sync: other rows' changes add zero)."""
        return self.parent.clone().index_put_((self.index,), self.delta * (self.rows == i), accumulate=True)

    def chunk(self, start: int, stop: int) -> "Mutants":
        """Rows [start, stop) as their own population."""
        keep = (self.rows >= start) & (self.rows < stop)
        return Mutants(self.parent, stop - start, self.rows[keep] - start, self.index[keep], self.delta[keep])


def supports(plan) -> bool:
    """Whether every step of a Population plan has a sparse-correction rule."""
    for step in plan:
        m = step[-1]
        if isinstance(m, WEIGHTED):
            if getattr(m, "padding_mode", "zeros") != "zeros" or isinstance(getattr(m, "padding", 0), str):
                return False
        elif not isinstance(m, _FREE):
            return False
    return True


def weighted(step: tuple[nn.Module, ...]) -> bool:
    return isinstance(step[-1], WEIGHTED)


def step_of_param(plan, params: list[nn.Parameter]) -> Tensor:
    """For each parameter, the index of the weighted step that owns it
    (among weighted steps, in forward order)."""
    steps = [s for s in plan if weighted(s)]
    owner = {id(p): t for t, step in enumerate(steps) for p in (step[-1].weight, step[-1].bias) if p is not None}
    return torch.tensor([owner.get(id(p), len(steps)) for p in params], dtype=torch.long)


class Changes:
    """The mutants' entries grouped by parameter tensor, and which children
    have diverged from the parent by each weighted step.

    Activations hold one row per DISTINCT network so far: row 0 the parent
    (and every child without a change yet), then the children in the order
    they first change (``slot``).  On the GA paper's network most children
    change only decoder weights, so the encoder runs on a few rows, not P.
    Everything per entry is computed here in a few vectorized operations;
    :meth:`of` only slices.
    """

    def __init__(self, m: Mutants, offsets: list[int], step_of_param: Tensor, units: Tensor, widths: Tensor, n: int):
        dev, steps = m.index.device, len(step_of_param)
        order = m.index.argsort()
        rows, index, self.delta = m.rows[order], m.index[order], m.delta[order]
        edges = torch.tensor(offsets, device=dev)
        param = torch.searchsorted(edges[1:], index, right=True)
        unit_in, unit_out, self.tap = units[index].unbind(1)  # unit read, unit written, kernel tap
        width_in, width_out = widths[param].unbind(1)  # units per sample of the layer's input and output
        step = step_of_param[param]
        first = torch.full((m.size,), steps, dtype=torch.long, device=dev)
        first.scatter_reduce_(0, rows, step, "amin")  # the step where each child first differs
        rank = torch.empty_like(first)
        rank[(first * m.size + torch.arange(m.size, device=dev)).argsort()] = torch.arange(1, m.size + 1, device=dev)
        self.slot = torch.where(first < steps, rank, 0)  # child -> activation row
        after = 1 + torch.bincount(first, minlength=steps + 1)[:steps].cumsum(0)  # rows after each step
        before = torch.cat([after.new_ones(1), after[:-1]])
        out_row = self.slot[rows]
        in_row = torch.where(out_row < before[step], out_row, 0)  # a child diverging here reads the parent's input
        # where sample 0 of each entry's unit sits in its layer's (rows, n, units, ...) output / input
        self.out_unit = out_row * (n * width_out) + unit_out
        self.in_unit = in_row * (n * width_in) + unit_in
        counts = torch.cat([torch.searchsorted(index, edges), after]).tolist()  # one host sync
        self.bounds, self.rows_after = counts[:len(offsets)], counts[len(offsets):]

    def of(self, param: int):
        """(output unit, input unit, kernel tap, delta) of the entries in
        parameter ``param`` (flat unit positions of sample 0), or None."""
        a, b = self.bounds[param], self.bounds[param + 1]
        if a == b:
            return None
        return self.out_unit[a:b], self.in_unit[a:b], self.tap[a:b], self.delta[a:b]


# ------------------------------------------------------------------ base
def prepare(step: tuple[nn.Module, ...], w: Tensor, b: Tensor | None, hw: tuple[int, int]):
    """The step with the parent's weights ``w``, ``b`` as a function of the
    activations (R, N, ...); kernels derived from the weights (the sub-pixel
    form) are built here once per parent."""
    m = step[-1]
    if isinstance(m, nn.Linear):
        return lambda h: F.linear(h, w, b)
    if len(step) == 2:
        op = _upsample_conv_transpose(step[0], m, w, b, hw)
    elif isinstance(m, nn.Conv2d):
        op = _conv2d_op(m, w, b)
    else:
        op = lambda x: F.conv_transpose2d(x, w, b, m.stride, m.padding, m.output_padding, m.groups, m.dilation)

    def run(h: Tensor) -> Tensor:
        out = op(h.flatten(0, 1))
        return out.view(*h.shape[:2], *out.shape[1:])
    return run


def _conv2d_op(m: nn.Conv2d, w: Tensor, b: Tensor | None):
    """A convolution with the parent's kernel.  A single-channel convolution
    (the GA paper's encoder) runs on ATen's plain kernel on the CPU: oneDNN's
    set-up costs ~100 us a call at that size (measured 24 us against 101 us
    for 10 images of 28x28)."""
    if w.device.type == "cpu" and m.groups == 1 and m.dilation == (1, 1) and w.shape[0] * w.shape[1] == 1:
        return lambda x: torch.ops.aten.thnn_conv2d(x, w, list(m.kernel_size), b, list(m.stride), list(m.padding))
    return lambda x: F.conv2d(x, w, b, m.stride, m.padding, m.dilation, m.groups)


def _upsample_conv_transpose(up: nn.Upsample, m: nn.ConvTranspose2d, w: Tensor, b: Tensor | None, hw):
    """Nearest upsampling then a stride-1 transposed convolution as one
    sub-pixel convolution with the parent's kernels (built once here; see
    :mod:`aelab.training.subpixel`).  Measured 4x (10->10 channels) and
    6.5x (10->1) faster than ``conv_transpose2d`` with the same weights on
    the GA paper's two layers."""
    scale = subpixel.integer_scale(up, hw)
    if scale is None or m.groups != 1:
        return lambda x: F.conv_transpose2d(up(x), w, b, m.stride, m.padding, m.output_padding, m.groups, m.dilation)
    run = subpixel.upsample_conv_transpose(w[None], b[None] if b is not None else None, scale, hw, m.padding)
    return lambda x: run(x)[:, 0]


# ----------------------------------------------------------- corrections
def correct(step: tuple[nn.Module, ...], out: Tensor, h: Tensor, change, is_bias: bool) -> None:
    """Add the changed weights' terms to ``out`` (rows, N, ...) in place;
    ``h`` is the step's input; ``change`` is :meth:`Changes.of`.  Every term is a
    gather of the input and one scatter-add whose positions come from
    per-layer tables (built once), so the cost is the number of touched
    values, not the layer's size; everything per entry was located by
    :class:`Changes` in one pass, so this is a dozen tensor operations."""
    out_unit, in_unit, tap, delta = change
    m, (N, width), plane = step[-1], out.shape[1:3], math.prod(out.shape[3:])  # plane 1 for a dense layer
    out_planes = (out_unit[:, None] + _strides(N, width, out.device)).view(-1)  # rows of out.view(-1, plane)
    if is_bias:  # out[row, :, unit] += delta over the unit's whole plane
        return out.view(-1, plane).index_add_(0, out_planes, delta[:, None, None].expand(-1, N, plane).reshape(-1, plane))
    planes = h.reshape(-1, math.prod(h.shape[3:])).index_select(
        0, (in_unit[:, None] + _strides(N, h.shape[2], out.device)).view(-1)).view(len(delta), N, -1)
    if isinstance(m, nn.Linear):
        return out.view(-1).index_add_(0, out_planes, (planes.view(-1, N) * delta[:, None]).view(-1))
    if isinstance(m, nn.Conv2d):
        return _conv2d(m, out, h, planes, out_planes, plane, tap, delta)
    return _conv_transpose2d(step, out, h, planes, out_planes, plane, tap, delta)


@functools.lru_cache(maxsize=64)
def _strides(n: int, width: int, device) -> Tensor:
    """Offsets of samples 0..n-1 in a (n, width, ...) block, in units: (n,)."""
    return torch.arange(n, device=device) * width


def unit_table(plan, params: list[nn.Parameter]) -> Tensor:
    """For every entry of the flat parameter vector: the input unit/channel
    it reads, the output unit/channel it writes, and its kernel tap
    (ky * kw + kx; 0 for dense layers and biases) -- one (n, 3) lookup
    table, so a generation's changes are located with one gather."""
    owner = {}
    for step in plan:
        if weighted(step):
            owner[id(step[-1].weight)] = step[-1]
            if step[-1].bias is not None:
                owner[id(step[-1].bias)] = None
    parts = []
    for p in params:
        if id(p) in owner and owner[id(p)] is not None:
            parts.append(_units(owner[id(p)], tuple(p.shape)))
        else:  # a bias (or a parameter outside weighted steps, never corrected): unit = its position
            i = torch.arange(p.numel())
            parts.append(torch.stack([torch.zeros_like(i), i, torch.zeros_like(i)], 1))
    return torch.cat(parts)


def width_table(plan, params: list[nn.Parameter]) -> Tensor:
    """For every parameter tensor: the units (features or channels) per
    sample of its layer's input and output -- (len(params), 2)."""
    width = {}
    for step in plan:
        if weighted(step):
            m = step[-1]
            io = (m.in_features, m.out_features) if isinstance(m, nn.Linear) else (m.in_channels, m.out_channels)
            width.update({id(p): io for p in (m.weight, m.bias) if p is not None})
    return torch.tensor([width.get(id(p), (1, 1)) for p in params], dtype=torch.long)


def _units(m: nn.Module, shape: tuple[int, ...]) -> Tensor:
    flat = torch.arange(math.prod(shape))
    if isinstance(m, nn.Linear):  # (out, in)
        o, i = torch.unravel_index(flat, shape)
        return torch.stack([i, o, torch.zeros_like(o)], 1)
    a, b, ky, kx = torch.unravel_index(flat, shape)
    tap, groups = ky * shape[3] + kx, m.groups
    if isinstance(m, nn.Conv2d):  # (out, in/groups, kh, kw)
        return torch.stack([(a // (shape[0] // groups)) * shape[1] + b, a, tap], 1)
    return torch.stack([a, (a // (shape[0] // groups)) * shape[1] + b, tap], 1)  # transposed: (in, out/groups, ...)


def _conv2d(m: nn.Conv2d, out: Tensor, h: Tensor, planes, out_planes, plane, tap, delta) -> None:
    """One weight (co, ci, ky, kx): out plane co += delta * input plane ci
    read at stride s from offset (ky, kx) (zero where that is padding)."""
    where, inside = _conv_table(tuple(m.weight.shape[2:]), m.stride, m.padding, m.dilation,
                                tuple(h.shape[-2:]), tuple(out.shape[-2:]), out.device)
    vals = planes.gather(2, where[tap][:, None, :].expand(-1, planes.shape[1], -1))  # (J, N, OH*OW)
    vals *= (delta[:, None] * inside[tap])[:, None, :]
    out.view(-1, plane).index_add_(0, out_planes, vals.view(-1, plane))


def _conv_transpose2d(step, out: Tensor, h: Tensor, planes, out_planes, plane, tap, delta) -> None:
    """One weight (ci, co, ky, kx): every input value of plane ci, times
    delta, lands on out plane co at (position * s - padding + offset) --
    for an (upsampling, transposed convolution) pair, every upsampled
    position, reading the input value the upsampling copies there."""
    m = step[-1]
    if len(step) == 2:
        source = _nearest_source(step[0], *h.shape[-2:], out.device)  # upsampled position -> input position
        planes, hw = planes.index_select(2, source), _upsampled_size(step[0], *h.shape[-2:])
    else:
        hw = tuple(h.shape[-2:])
    where, inside = _conv_transpose_table(tuple(m.weight.shape[2:]), m.stride, m.padding, m.dilation, hw,
                                          tuple(out.shape[-2:]), out.device)
    vals = planes * (delta[:, None, None] if inside is None else (delta[:, None] * inside[tap])[:, None, :])
    slots = (out_planes.view(len(delta), -1) * plane)[:, :, None] + where[tap][:, None, :]  # (J, N, positions)
    out.view(-1).scatter_add_(0, slots.view(-1), vals.view(-1))


@functools.lru_cache(maxsize=64)
def _nearest_source(up: nn.Upsample, H: int, W: int, device) -> Tensor:
    """The flat input position a nearest upsampling copies to each output
    position -- read off the module itself (exact for any size or factor)."""
    return up(torch.arange(H * W, dtype=torch.float64).view(1, 1, H, W)).round().long().view(-1).to(device)


@functools.lru_cache(maxsize=64)
def _upsampled_size(up: nn.Upsample, H: int, W: int) -> tuple[int, int]:
    return tuple(up(torch.zeros(1, 1, H, W)).shape[-2:])


@functools.lru_cache(maxsize=64)
def _conv_table(k, stride, padding, dilation, hw, ohw, device):
    """For each kernel tap: the flat input position read by every output
    position (clamped), and whether it is inside the input (else padding)."""
    (kh, kw), (H, W), (OH, OW) = k, hw, ohw
    ky, kx = torch.arange(kh).repeat_interleave(kw), torch.arange(kw).repeat(kh)  # (taps,)
    y = ky[:, None] * dilation[0] + stride[0] * torch.arange(OH) - padding[0]  # (taps, OH)
    x = kx[:, None] * dilation[1] + stride[1] * torch.arange(OW) - padding[1]
    inside = ((y >= 0) & (y < H))[:, :, None] & ((x >= 0) & (x < W))[:, None, :]
    where = y.clamp(0, H - 1)[:, :, None] * W + x.clamp(0, W - 1)[:, None, :]
    return where.flatten(1).to(device), inside.flatten(1).float().to(device)


@functools.lru_cache(maxsize=64)
def _conv_transpose_table(k, stride, padding, dilation, hw, ohw, device):
    """For each kernel tap: the flat output position each input position
    lands on (clamped), and a 0/1 mask of those inside the output (None
    when all are, i.e. without padding)."""
    (kh, kw), (H, W), (OH, OW) = k, hw, ohw
    ky, kx = torch.arange(kh).repeat_interleave(kw), torch.arange(kw).repeat(kh)
    y = torch.arange(H) * stride[0] - padding[0] + ky[:, None] * dilation[0]  # (taps, H)
    x = torch.arange(W) * stride[1] - padding[1] + kx[:, None] * dilation[1]
    inside = ((y >= 0) & (y < OH))[:, :, None] & ((x >= 0) & (x < OW))[:, None, :]
    where = y.clamp(0, OH - 1)[:, :, None] * OW + x.clamp(0, OW - 1)[:, None, :]  # (taps, H, W)
    mask = None if bool(inside.all()) else inside.flatten(1).float().to(device)
    return where.flatten(1).to(device), mask
