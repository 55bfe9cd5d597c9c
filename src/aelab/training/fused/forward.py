"""The stacked model's forward: a part's compiled plan run for all members
at once."""
from __future__ import annotations

import torch

from .calibration import _Calibration
from .layers import _activation, _dropout, _Linear
from .noise import _Noise
from .stack import _Step

Tensor = torch.Tensor


class _Forward:
    """The stacked model: runs a part's plan for all members at once."""

    def __init__(self, plan: dict[str, list[_Step]], exact: bool):
        self.plan, self.exact = plan, exact
        self.cal = _Calibration(exact)

    def part(self, name: str, params: list[Tensor], h: Tensor, noise: _Noise | None) -> Tensor:
        """``noise`` None: eval mode (no dropout, a VAE decodes ``mu``)."""
        for si, step in enumerate(self.plan[name]):
            if step.kind == "linear":
                b = params[step.bias] if step.bias is not None else None
                h = _Linear.apply(h if h.is_contiguous() else h.contiguous(), params[step.weight], b, self.cal)
            elif step.kind == "act":
                h = _activation(step.module, h, self.cal)
            elif step.kind == "per_sample":  # parameter-free, per sample: on the merged (K*N) batch
                out = step.module(h.reshape(-1, *h.shape[2:]))
                h = out.reshape(h.shape[0], h.shape[1], *out.shape[1:])
            elif step.kind == "flatten":
                h = h.flatten(2)
            elif step.kind == "reshape":
                h = h.reshape(h.shape[0], h.shape[1], *step.shape)
            elif step.kind == "dropout" and noise is not None:
                h = _dropout(h, noise.rngs, noise.rates[(name, si)])
        return h
