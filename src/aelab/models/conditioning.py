"""How conditional families read a condition: integer labels (B,) become
one-hot rows (B, K); probability vectors (B, K) pass as they are (a soft
condition, which is how LSO conditions a decoder on its target)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

_INTEGER = (torch.int64, torch.int32, torch.int16, torch.uint8)


def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Labels (B,) -> one-hot float (B, K); probability vectors (B, K) as floats."""
    if y.dtype in _INTEGER:
        return F.one_hot(y.long(), num_classes).float()
    return y.float()


def sample_classes(model, n: int, y: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` draws from the prior N(0, I) decoded as class ``y`` (labels or
    probability vectors; default: the classes in turn, 0, 1, ..., K-1, 0, ...)
    by a conditional model with ``decode(z, y)``, ``latent_dim`` and ``num_classes``."""
    dev = next(model.parameters()).device
    y = torch.arange(n) % model.num_classes if y is None else torch.as_tensor(y)
    z = torch.randn(n, model.latent_dim, generator=generator).to(dev)
    return model.decode(z, y.to(dev))
