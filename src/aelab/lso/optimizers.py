"""Row-wise optimizers for a batch of independent latent vectors.

Each row of ``z`` (B, d) is its own optimization problem (one restart), so
every optimizer keeps per-row state and ``reset(rows)`` starts a replaced
restart afresh without touching the others; a batch therefore follows
exactly the path each row would follow alone.  ``torch.optim`` keeps one
step count per tensor, which would make a replaced row inherit its
predecessor's Adam bias correction, hence these small versions.

* :class:`NormalizedStep` is the LSO paper's Algorithm 3: with D the
  derivatives, S the squared sum of D and C the desired change of the
  error, every value moves by ``D * C / S``.  To first order the error then
  changes by exactly C.  aelab asks for ``C = -rate * E`` (lose the fraction
  ``rate`` of the current error E each step); ``max_step`` optionally caps
  the step's length (the paper has no cap; near a plateau S -> 0 and the
  step becomes a long jump).
* :class:`Adam` (Kingma & Ba 2015, Algorithm 1) and :class:`SGD` (with
  optional momentum) are the usual alternatives.
"""
from __future__ import annotations

import torch

from ..updates import adam

OPTIMIZERS = ("normalized", "adam", "sgd")


class RowOptimizer:
    """Base: ``step(rows, z, grad, error)`` returns the rows' next values."""

    def init(self, batch: int, dim: int, dtype: torch.dtype = torch.float32) -> None:
        """Allocate state for ``batch`` rows of ``dim`` values."""

    def reset(self, rows: torch.Tensor) -> None:
        """Forget the state of ``rows`` (their restart was replaced)."""

    def step(self, rows: torch.Tensor, z: torch.Tensor, grad: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class NormalizedStep(RowOptimizer):
    """The LSO paper's Algorithm 3: ``z += D * C / S`` with ``C = -rate * E``."""

    def __init__(self, rate: float = 0.5, max_step: float | None = None):
        self.rate, self.max_step = float(rate), max_step

    def step(self, rows, z, grad, error):
        s = grad.pow(2).sum(1, keepdim=True)                     # (B, 1) squared sum of derivatives
        c = -self.rate * error.reshape(-1, 1)                    # (B, 1) desired change of the error
        scale = torch.where(s > 0, c / s.clamp_min(torch.finfo(s.dtype).tiny), torch.zeros_like(s))
        delta = grad * scale                                     # (B, d)
        if self.max_step is not None:
            norm = delta.norm(dim=1, keepdim=True)
            delta = delta * torch.clamp(self.max_step / norm.clamp_min(1e-30), max=1.0)
        return z + delta


class SGD(RowOptimizer):
    """Gradient descent with optional (heavy-ball) momentum."""

    def __init__(self, lr: float = 1.0, momentum: float = 0.0):
        self.lr, self.momentum = float(lr), float(momentum)

    def init(self, batch, dim, dtype=torch.float32):
        self.velocity = torch.zeros(batch, dim, dtype=dtype)

    def reset(self, rows):
        self.velocity[rows] = 0.0

    def step(self, rows, z, grad, error):
        v = self.momentum * self.velocity[rows] + grad
        self.velocity[rows] = v
        return z - self.lr * v


class Adam(RowOptimizer):
    """Adam with a step count per row (Kingma & Ba 2015, Algorithm 1)."""

    def __init__(self, lr: float = 0.05, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = float(lr), beta1, beta2, eps

    def init(self, batch, dim, dtype=torch.float32):
        self.m, self.v = torch.zeros(batch, dim, dtype=dtype), torch.zeros(batch, dim, dtype=dtype)
        self.t = torch.zeros(batch, 1, dtype=dtype)

    def reset(self, rows):
        self.m[rows], self.v[rows], self.t[rows] = 0.0, 0.0, 0.0

    def step(self, rows, z, grad, error):
        t = self.t[rows] + 1
        delta, m, v = adam(grad, self.m[rows], self.v[rows], t, self.lr, self.beta1, self.beta2, self.eps)
        self.m[rows], self.v[rows], self.t[rows] = m, v, t
        return z - delta


def make_optimizer(name: str, lr: float | None = None, **kwargs) -> RowOptimizer:
    """``normalized`` (lr = the paper's rate), ``adam`` or ``sgd`` by name."""
    from .compose import LSOError
    if name == "normalized":
        return NormalizedStep(**({"rate": lr} if lr is not None else {}), **kwargs)
    if name == "adam":
        return Adam(**({"lr": lr} if lr is not None else {}))
    if name == "sgd":
        return SGD(**({"lr": lr} if lr is not None else {}), **kwargs)
    raise LSOError(f"--optimizer {name}: unknown, expected one of {', '.join(OPTIMIZERS)}")
