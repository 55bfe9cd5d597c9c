"""The stacked model's forward: a part's compiled plan run for all members
at once."""
from __future__ import annotations

import torch

from .calibration import _Calibration
from .layers import _activation, _dropout, _Linear
from .noise import _Noise
from .stack import _Step

Tensor = torch.Tensor


def _linear(fwd, step, params, h, noise, key):
    b = params[step.bias] if step.bias is not None else None
    return _Linear.apply(h if h.is_contiguous() else h.contiguous(), params[step.weight], b, fwd.cal)


def _per_sample(fwd, step, params, h, noise, key):  # parameter-free, per sample: on the merged (K*N) batch
    out = step.module(h.reshape(-1, *h.shape[2:]))
    return out.reshape(h.shape[0], h.shape[1], *out.shape[1:])


def _dropout_step(fwd, step, params, h, noise, key):
    return h if noise is None else _dropout(h, noise.rngs, noise.rates[key])  # eval mode: no dropout


# step.op -> how it runs on (K, N, ...) tensors
RUN = {"linear": _linear,
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

    def part(self, name: str, params: list[Tensor], h: Tensor, noise: _Noise | None) -> Tensor:
        """``noise`` None: eval mode (no dropout, a VAE decodes ``mu``)."""
        for si, step in enumerate(self.plan[name]):
            h = RUN[step.op](self, step, params, h, noise, (name, si))
        return h
