"""The stacked layers: dense products and activations as autograd Functions
whose forward and backward are the calibrated choice between batched and
per-member kernels, and per-member dropout."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .calibration import _Calibration, _per_member, _witnesses
from .noise import _MemberRNG

Tensor = torch.Tensor
_ATEN = torch.ops.aten


class _Linear(torch.autograd.Function):
    """``h @ W^T + b`` for every member: (K, N, in) x (K, out, in) -> (K, N, out),
    with the solo ``addmm``'s forward and backward products, each batched
    where the calibration found the batched kernel equal."""

    @staticmethod
    def forward(ctx, h, w, b, cal):
        """The solo ``addmm`` (``mm`` without bias), batched or per member as calibrated."""
        ctx.save_for_backward(h, w)
        ctx.cal, ctx.has_bias = cal, b is not None
        K, N, i = h.shape
        o = w.shape[1]
        if b is None:
            fwd = (lambda h_, w_: torch.bmm(h_, w_.transpose(1, 2)),
                   lambda h_, w_: _per_member(lambda a, c: a.mm(c.t()), h_, w_))
            shapes = [(K, N, i), (K, o, i)]
            args = (h, w)
        else:
            fwd = (lambda h_, w_, b_: torch.baddbmm(b_.unsqueeze(1), h_, w_.transpose(1, 2)),
                   lambda h_, w_, b_: _per_member(lambda a, c, d: torch.addmm(d, a, c.t()), h_, w_, b_))
            shapes = [(K, N, i), (K, o, i), (K, o)]
            args = (h, w, b)
        use = cal.batched(("fwd", b is not None, K, N, i, o), *fwd, *shapes, device=h.device, dtype=h.dtype)
        return fwd[0](*args) if use else fwd[1](*args)

    @staticmethod
    def backward(ctx, g):
        """The solo backward's three products (input, weight, bias), each batched
        or per member as calibrated."""
        h, w = ctx.saved_tensors
        cal = ctx.cal
        K, N, i = h.shape
        o = w.shape[1]
        g = g.contiguous()
        dev, dt = h.device, h.dtype
        gh = gw = gb = None
        if ctx.needs_input_grad[0]:  # solo: grad.mm(weight)
            ops = (torch.bmm, lambda a, c: _per_member(torch.mm, a, c))
            use = cal.batched(("dh", K, N, i, o), *ops, (K, N, o), (K, o, i), device=dev, dtype=dt)
            gh = ops[0](g, w) if use else ops[1](g, w)
        if ctx.needs_input_grad[1]:  # solo (weight.t() is column-major): grad.t().mm(input)
            ops = (lambda a, c: torch.bmm(a.transpose(1, 2), c),
                   lambda a, c: _per_member(lambda x, y: x.t().mm(y), a, c))
            use = cal.batched(("dw", K, N, i, o), *ops, (K, N, o), (K, N, i), device=dev, dtype=dt)
            gw = ops[0](g, h) if use else ops[1](g, h)
        if ctx.has_bias and ctx.needs_input_grad[2]:  # solo: grad summed to the bias's shape
            ops = (lambda a: a.sum(1), lambda a: _per_member(lambda x: x.sum(0), a))
            use = cal.batched(("db", K, N, o), *ops, (K, N, o), device=dev, dtype=dt)
            gb = ops[0](g) if use else ops[1](g)
        return gh, gw, gb, None


def _rowwise(op, *tensors: Tensor) -> Tensor:
    """``op(*tensors)`` with the first operand copied into one padded row per
    member: TensorIterator cannot merge the rows, so each member's elements
    get their own vectorised body and scalar tail, as the solo tensor does.
    (Padding the input, not an ``out=``: ``gelu.out`` writes a strided
    ``out`` wrongly in torch 2.13.)"""
    t = tensors[0]
    K, m = t.shape[0], t[0].numel()
    padded = torch.empty(K, m + 1, dtype=t.dtype, device=t.device)[:, :m]
    padded.copy_(t.reshape(K, m))
    return op(padded, *(x.reshape(K, m) for x in tensors[1:])).view(t.shape)


# activation -> (forward, backward(grad, input, output)) as the solo autograd runs them
_ACT_RULES = {
    nn.ReLU: (lambda m, x: torch.relu(x), lambda m, g, x, y: _ATEN.threshold_backward(g, y, 0)),
    nn.Sigmoid: (lambda m, x: torch.sigmoid(x), lambda m, g, x, y: _ATEN.sigmoid_backward(g, y)),
    nn.Tanh: (lambda m, x: torch.tanh(x), lambda m, g, x, y: _ATEN.tanh_backward(g, y)),
    nn.ELU: (lambda m, x: F.elu(x, m.alpha), lambda m, g, x, y: _ATEN.elu_backward(g, m.alpha, 1, 1, False, x)),
    nn.GELU: (lambda m, x: F.gelu(x, approximate=m.approximate),
              lambda m, g, x, y: _ATEN.gelu_backward(g, x, approximate=m.approximate)),
    nn.LeakyReLU: (lambda m, x: F.leaky_relu(x, m.negative_slope),
                   lambda m, g, x, y: _ATEN.leaky_relu_backward(g, x, m.negative_slope, False)),
}


def _solo_grad(m: nn.Module, x: Tensor, g: Tensor) -> Tensor:
    """What the solo autograd gives ``x`` for ``m(x)`` under the gradient ``g``."""
    with torch.enable_grad():
        x = x.detach().requires_grad_()
        return torch.autograd.grad(m(x), x, g)[0]


_FORMULA_OK: dict = {}


def _formula_ok(m: nn.Module) -> bool:
    """Whether ``_ACT_RULES``' backward formula is what the solo autograd
    computes for ``m`` (checked once per activation on a few shapes)."""
    key = repr(m)
    if key not in _FORMULA_OK:
        _, bwd = _ACT_RULES[type(m)]
        gen = torch.Generator().manual_seed(0)
        ok = True
        for shape in ((3, 7), (64, 33), (5, 1000)):
            x, g = torch.randn(shape, generator=gen) * 2, torch.randn(shape, generator=gen)
            ok = ok and torch.equal(bwd(m, g, x, m(x)), _solo_grad(m, x, g))
        _FORMULA_OK[key] = ok
    return _FORMULA_OK[key]


class _Act(torch.autograd.Function):
    """An activation on (K, N, ...) whose forward and backward are each the
    calibrated choice of: the plain batched kernel, the kernel on one padded
    row per member (:func:`_rowwise`; sigmoid and ELU round their vector body
    and scalar tail differently), or the per-member (solo) computation."""

    @staticmethod
    def forward(ctx, h, m, cal):
        fwd, _ = _ACT_RULES[type(m)]
        candidates = [lambda x: fwd(m, x), lambda x: _rowwise(lambda a: fwd(m, a), x)]
        key = ("act", repr(m), tuple(h.shape))
        witnesses = _witnesses(("f", repr(m)), lambda x: fwd(m, x), 1, h.dtype)
        choice = cal.pick(key + ("f",), candidates, lambda x: _per_member(m, x), [tuple(h.shape)],
                          h.device, h.dtype, witnesses)
        y = _per_member(m, h) if choice is None else candidates[choice](h)
        ctx.save_for_backward(h, y)
        ctx.m, ctx.cal, ctx.key = m, cal, key
        return y

    @staticmethod
    def backward(ctx, g):
        """The solo autograd's gradient: the activation's backward formula,
        calibrated like the forward, or the solo autograd per member when the
        formula is not what it computes."""
        h, y = ctx.saved_tensors
        m = ctx.m
        if not _formula_ok(m):
            return _per_member(lambda a, b: _solo_grad(m, b, a), g, h), None, None
        _, bwd = _ACT_RULES[type(m)]
        g = g.contiguous()

        def formula(g_, x, y_):  # elementwise in (grad, input, output)
            return bwd(m, g_, x, y_)
        candidates = [formula, lambda g_, x, y_: _rowwise(formula, g_, x, y_)]
        shape = tuple(h.shape)
        witnesses = _witnesses(("b", repr(m)), formula, 3, h.dtype)
        choice = ctx.cal.pick(ctx.key + ("b",), candidates, lambda *a: _per_member(formula, *a), [shape] * 3,
                              h.device, h.dtype, witnesses)
        return (_per_member(formula, g, h, y) if choice is None else candidates[choice](g, h, y)), None, None


def _activation(m: nn.Module, h: Tensor, cal: _Calibration) -> Tensor:
    if isinstance(m, nn.Identity) or not cal.exact or type(m) not in _ACT_RULES \
            or getattr(m, "inplace", False):
        return m(h)
    return _Act.apply(h, m, cal)


def _dropout(h: Tensor, rngs: list[_MemberRNG], rates: tuple[float, ...]) -> Tensor:
    if all(p == 0 for p in rates):
        return h  # solo: dropout with p = 0 returns its input (and draws nothing)
    noise = torch.empty_like(h)
    for k, (rng, p) in enumerate(zip(rngs, rates)):
        if p == 1:
            noise[k].zero_()
        elif p > 0:
            noise[k] = rng.dropout_noise(h[k], p)
        else:
            noise[k].fill_(1.0)  # h * 1 == h
    return h * noise
