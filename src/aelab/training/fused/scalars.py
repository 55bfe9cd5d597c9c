"""Per-member scalars as tensors, rounded as torch rounds its own scalars."""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def _coef(values, device, like: Tensor | None = None) -> Tensor:
    """Per-member scalars (Python floats, computed as torch computes its
    scalars) as float32, shaped to broadcast against ``like`` (K, ...)."""
    t = torch.tensor(values, dtype=torch.float64).to(device=device, dtype=torch.float32)
    return t if like is None else t.view(-1, *([1] * (like.dim() - 1)))
