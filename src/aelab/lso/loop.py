"""The LSO loop: move latent vectors until the classifier says the target.

The objective of one row is the squared error between the classifier's
probabilities and the target, averaged over the K classes (the LSO paper's
"MSE"; its threshold 0.001 is a total squared error of 0.01 over 10
classes), plus any regularizer penalty.  A row *succeeds* when that error
(without penalty) is at or below ``threshold``.

Two entry points:

* :func:`lso_steps` - a generator over the optimization of a batch of
  starting points, one :class:`LSOStep` per step (latents, probabilities,
  errors).  No restarts, no stopping: the caller decides when to stop
  (an animation, a notebook, a test).
* :func:`optimize` - ``n`` samples at once, ``parallel`` restarts per
  sample, all rows of all samples in one batch; a restart that has not
  succeeded after ``steps`` updates is replaced by a new start until its
  sample succeeds or has used ``restarts`` starts.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from .optimizers import NormalizedStep, RowOptimizer
from .regularizers import Regularizer

DEFAULT_THRESHOLD = 0.001


@dataclass
class LSOStep:
    """The state after ``step`` updates: ``latents`` (B, d), ``probs`` (B, K),
    ``error`` (B,) classifier error and ``images`` (B, C, H, W)."""

    step: int
    latents: torch.Tensor
    probs: torch.Tensor
    error: torch.Tensor
    images: torch.Tensor


def classifier_error(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error between probabilities and targets, mean over classes: (B,)."""
    return (probs - targets).pow(2).mean(1)


def _evaluate(model, z: torch.Tensor, targets: torch.Tensor, reg: Regularizer):
    """Images, probabilities, error, objective and its gradient at ``z`` (B, d)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        images = model.images(z, targets)              # (B, C, H, W); a conditional decoder decodes the target
        probs = torch.softmax(model.classifier(images)["logits"], dim=1)  # (B, K)
        error = classifier_error(probs, targets)       # (B,)
        loss = error + reg.penalty(z)
        grad, = torch.autograd.grad(loss.sum(), z)     # rows are independent: d(sum)/dz_i = dloss_i/dz_i
    return images.detach(), probs.detach(), error.detach(), loss.detach(), grad


def lso_steps(model, start: torch.Tensor, targets: torch.Tensor, optimizer: RowOptimizer | None = None,
              regularizer: Regularizer | None = None, steps: int | None = None) -> Iterator[LSOStep]:
    """Yield the state of every row after 0, 1, 2, ... updates (``steps``
    updates at most; forever when None).  ``start`` is (B, d), ``targets``
    (B, K) or (K,).  The rows are optimized together but independently.
    A float64 ``start`` (with a float64 model) runs in float64."""
    optimizer = optimizer or NormalizedStep()
    reg = regularizer or Regularizer()
    z = torch.as_tensor(start)
    z = reg.project(z.clone() if z.is_floating_point() else z.float())   # float64 stays float64
    targets = torch.as_tensor(targets, dtype=z.dtype).expand(len(z), -1)
    optimizer.init(*z.shape, dtype=z.dtype)
    rows = torch.arange(len(z))
    for k in itertools.count():
        images, probs, error, loss, grad = _evaluate(model, z, targets, reg)
        yield LSOStep(k, z.detach().clone(), probs, error, images)
        if steps is not None and k >= steps:
            return
        z = reg.project(optimizer.step(rows, z.detach(), grad, loss))


@dataclass
class LSOResult:
    """One generated sample per target row (``n`` rows).

    ``steps``: updates the returned restart took (the full budget when the
    sample failed); ``restarts``: starts used; ``total_steps``: updates
    summed over all its restarts (the cost).  For a failed sample the
    lowest-error final point of its restarts is returned.
    ``restart_successes`` / ``restart_failures`` count restarts that ran to
    an end (siblings cancelled by a success are in neither).
    """

    targets: np.ndarray
    latents: np.ndarray
    start_latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray
    error: np.ndarray
    success: np.ndarray
    steps: np.ndarray
    restarts: np.ndarray
    total_steps: np.ndarray
    restart_successes: int = 0
    restart_failures: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if len(self.success) else float("nan")

    @property
    def restart_success_rate(self) -> float:
        done = self.restart_successes + self.restart_failures
        return self.restart_successes / done if done else float("nan")


class _Book:
    """Per-sample bookkeeping of :func:`optimize`."""

    def __init__(self, n: int, d: int, k: int, image_shape):
        self.done = torch.zeros(n, dtype=torch.bool)
        self.best_error = torch.full((n,), float("inf"))
        self.latents, self.starts = torch.zeros(n, d), torch.zeros(n, d)
        self.images, self.probs = torch.zeros(n, *image_shape), torch.zeros(n, k)
        self.steps = torch.zeros(n, dtype=torch.long)
        self.total_steps = torch.zeros(n, dtype=torch.long)
        self.successes = self.failures = 0

    def keep(self, samples, rows_err, z, z0, images, probs, steps) -> None:
        """Store each listed row as its sample's answer if its error is the
        sample's lowest so far (rows of one sample: the lowest error wins)."""
        best = torch.full_like(self.best_error, float("inf")).scatter_reduce(0, samples, rows_err, "amin")
        win = (rows_err == best[samples]) & (rows_err < self.best_error[samples])
        cand = win.nonzero().squeeze(1)  # ties: keep a sample's first winning row (rows come sorted by sample)
        win[cand[1:][samples[cand[1:]] == samples[cand[:-1]]]] = False
        s = samples[win]
        self.best_error[s] = rows_err[win]
        self.latents[s], self.starts[s], self.images[s] = z[win], z0[win], images[win]
        self.probs[s], self.steps[s] = probs[win], steps[win]


def optimize(model, targets, start, optimizer: RowOptimizer | None = None, regularizer: Regularizer | None = None,
             threshold: float = DEFAULT_THRESHOLD, steps: int = 200, restarts: int = 20, parallel: int = 5,
             seed: int = 0) -> LSOResult:
    """Generate one sample per row of ``targets`` (n, K), starting from draws
    of ``start`` (a sampler, see :mod:`aelab.lso.starts`)."""
    optimizer, reg = optimizer or NormalizedStep(), regularizer or Regularizer()
    t = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    n, p = len(t), max(1, min(parallel, restarts))
    gen = torch.Generator().manual_seed(seed)
    owner = torch.arange(n).repeat_interleave(p)                   # (B,) row -> sample
    z0 = reg.project(start.sample(n * p, gen))                      # (B, d) start of each row's restart
    z, age = z0.clone(), torch.zeros(n * p, dtype=torch.long)
    used = torch.full((n,), p, dtype=torch.long)
    active = torch.ones(n * p, dtype=torch.bool)
    optimizer.init(*z.shape)
    book = _Book(n, z.shape[1], t.shape[1], model.image_shape)
    while active.any():
        rows = active.nonzero().squeeze(1)
        images, probs, error, loss, grad = _evaluate(model, z[rows], t[owner[rows]], reg)
        ok = error <= threshold
        _settle_successes(book, rows[ok], owner, error[ok], z, z0, images[ok], probs[ok], age, active)
        spent = ~ok & (age[rows] >= steps)
        _settle_failures(book, rows[spent], owner, error[spent], z, z0, images[spent], probs[spent], age)
        go = ~ok & ~spent & active[rows]
        move = rows[go]
        z[move] = reg.project(optimizer.step(move, z[move], grad[go], loss[go]))
        age[move] += 1
        book.total_steps.index_add_(0, owner[move], torch.ones_like(move))
        _replace(rows[spent], owner, used, restarts, book, start, gen, reg, optimizer, z, z0, age, active)
    return _result(book, t, used)


def _settle_successes(book, rows, owner, err, z, z0, images, probs, age, active) -> None:
    samples = owner[rows]
    fresh = ~book.done[samples]
    rows, samples, err = rows[fresh], samples[fresh], err[fresh]
    if not len(rows):
        return
    book.best_error[samples] = float("inf")  # a success replaces any failed attempt kept so far
    book.keep(samples, err, z[rows], z0[rows], images[fresh], probs[fresh], age[rows])
    book.done[samples] = True
    book.successes += int(len(torch.unique(samples)))
    active &= ~book.done[owner]  # stop every row of a finished sample


def _settle_failures(book, rows, owner, err, z, z0, images, probs, age) -> None:
    if len(rows):
        book.keep(owner[rows], err, z[rows], z0[rows], images, probs, age[rows])
        book.failures += len(rows)


def _replace(rows, owner, used, restarts, book, start, gen, reg, optimizer, z, z0, age, active) -> None:
    """Give each spent row a new start while its sample has starts left."""
    if not len(rows):
        return
    samples = owner[rows]
    order = torch.argsort(samples, stable=True)
    rows, samples = rows[order], samples[order]
    rank = torch.arange(len(rows)) - torch.searchsorted(samples, samples)  # k-th spent row of its sample
    again = (used[samples] + rank < restarts) & ~book.done[samples]
    active[rows[~again]] = False
    fresh = rows[again]
    if len(fresh):
        used.index_add_(0, samples[again], torch.ones_like(fresh))
        z0[fresh] = reg.project(start.sample(len(fresh), gen))
        z[fresh], age[fresh] = z0[fresh], 0
        optimizer.reset(fresh)


def _result(book: _Book, t: torch.Tensor, used: torch.Tensor) -> LSOResult:
    np_ = lambda a: a.detach().cpu().numpy()
    return LSOResult(
        targets=np_(t), latents=np_(book.latents), start_latents=np_(book.starts), images=np_(book.images),
        probs=np_(book.probs), error=np_(book.best_error), success=np_(book.done), steps=np_(book.steps),
        restarts=np_(used), total_steps=np_(book.total_steps), restart_successes=book.successes,
        restart_failures=book.failures)
