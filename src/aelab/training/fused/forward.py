"""The stacked model's forward: a part's compiled plan run for all members
at once."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .calibration import _Calibration
from .layers import _activation, _dropout, _Linear
from .noise import _Noise
from .stack import _Step

Tensor = torch.Tensor


def _linear(fwd, step, params, h, noise, key):
    b = params[step.bias] if step.bias is not None else None
    return _Linear.apply(h if h.is_contiguous() else h.contiguous(), params[step.weight], b, fwd.cal)


def _conv(fwd, step, params, h, noise, key):
    """A convolution (or transposed one) for every member: (K, N, C, H, W) ->
    (K, N, O, H', W').  Exact: each member's own call of the solo kernel,
    whose autograd backward is then the solo backward too (oneDNN's grouped
    kernels are not the solo ones bit for bit).  Otherwise one grouped
    convolution, the members as its groups (HFTA's fusion of convolutions)."""
    m = step.module
    w = params[step.weight]
    b = params[step.bias] if step.bias is not None else None
    if fwd.exact:
        return torch.stack([m._conv_forward(h[k], w[k], None if b is None else b[k]) if isinstance(m, nn.Conv2d)
                            else _transposed(m, h[k], w[k], None if b is None else b[k], 1)
                            for k in range(len(h))])
    K, N = h.shape[:2]
    x = h.transpose(0, 1).reshape(N, -1, *h.shape[3:])  # (N, K*C, H, W): member k's channels are group k
    wg, bg = w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1)
    out = (F.conv2d(x, wg, bg, m.stride, m.padding, m.dilation, K) if isinstance(m, nn.Conv2d)
           else _transposed(m, x, wg, bg, K))
    return out.reshape(N, K, -1, *out.shape[2:]).transpose(0, 1)


def _transposed(m: nn.ConvTranspose2d, x, w, b, groups: int):
    return F.conv_transpose2d(x, w, b, m.stride, m.padding, m.output_padding, groups, m.dilation)


def _batchnorm(fwd, step, params, h, noise, key):
    """Batch norm for every member, each on its own batch statistics and
    running buffers (``fwd.buffers``: the stacked buffers of the members in
    this pass), as ``nn.BatchNorm1d/2d.forward`` runs it: in training
    (``noise`` given) the batch count rises by one and the running
    statistics move by ``momentum`` (or 1/count when it is None); in eval
    mode the running statistics normalize.  Exact: each member's own call
    of the solo kernel.  Otherwise one batch norm over the members' channels
    side by side (the statistics are per channel, so per member), when the
    members share the update factor."""
    m = step.module
    training = noise is not None
    w = params[step.weight] if step.weight >= 0 else None
    b = params[step.bias] if step.bias is not None else None
    mean, var, count = (fwd.buffers[i] for i in step.buffers) if step.buffers else (None, None, None)
    factors = [0.0 if m.momentum is None else m.momentum] * len(h)
    if training and count is not None:
        count.add_(1)
        if m.momentum is None:  # a cumulative average
            factors = [1.0 / float(c) for c in count]
    use_batch = training or mean is None
    if fwd.exact or len(set(factors)) > 1:
        return torch.stack([F.batch_norm(h[k], None if mean is None else mean[k], None if var is None else var[k],
                                         None if w is None else w[k], None if b is None else b[k],
                                         use_batch, factors[k], m.eps) for k in range(len(h))])
    K, N = h.shape[:2]
    x = h.transpose(0, 1).reshape(N, -1, *h.shape[3:])  # (N, K*C, ...): member k's channels side by side
    flat = (lambda t: None if t is None else t.reshape(-1))
    out = F.batch_norm(x, flat(mean), flat(var), flat(w), flat(b), use_batch, factors[0], m.eps)
    return out.reshape(N, K, *h.shape[2:]).transpose(0, 1)


def _per_sample(fwd, step, params, h, noise, key):  # parameter-free, per sample: on the merged (K*N) batch
    out = step.module(h.reshape(-1, *h.shape[2:]))
    return out.reshape(h.shape[0], h.shape[1], *out.shape[1:])


def _dropout_step(fwd, step, params, h, noise, key):
    return h if noise is None else _dropout(h, noise.rngs, noise.rates[key])  # eval mode: no dropout


# step.op -> how it runs on (K, N, ...) tensors
RUN = {"linear": _linear,
       "conv": _conv,
       "batchnorm": _batchnorm,
       "act": lambda fwd, step, params, h, noise, key: _activation(step.module, h, fwd.cal),
       "per_sample": _per_sample,
       "flatten": lambda fwd, step, params, h, noise, key: h.flatten(2),
       "reshape": lambda fwd, step, params, h, noise, key: h.reshape(h.shape[0], h.shape[1], *step.shape),
       "dropout": _dropout_step}


class _Forward:
    """The stacked model: runs a part's plan for all members at once."""

    def __init__(self, plan: dict[str, list[_Step]], exact: bool):
        self.plan, self.exact = plan, exact
        self.cal = _Calibration(exact)
        self.buffers: list[Tensor] = []  # the members of the current pass: their stacked buffers (batch norm)

    def part(self, name: str, params: list[Tensor], h: Tensor, noise: _Noise | None) -> Tensor:
        """``noise`` None: eval mode (no dropout, a VAE decodes ``mu``)."""
        for si, step in enumerate(self.plan[name]):
            h = RUN[step.op](self, step, params, h, noise, (name, si))
        return h
