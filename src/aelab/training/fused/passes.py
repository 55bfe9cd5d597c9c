"""The batched passes over the data: one training epoch (minibatch steps,
members in cache-sized chunks) and one evaluation for every active member,
mixed into :class:`~.trainer.FusedGradientTrainer`."""
from __future__ import annotations

import torch

from ..gradient import epoch_seed, rows
from .noise import _MemberRNG, _Noise
from .scalars import _coef

Tensor = torch.Tensor
EVAL_BATCH = 1024  # GradientTrainer.evaluate_loss's default chunk
# Floats of the widest activation per batched pass.  Measured (1 thread, this 2-core Xeon, 2 MB L2):
# mnist-hidden3 x 32 seeds, 1 epoch: 4 members per pass 2.23 s, 8 2.06, 16 2.42, 32 2.95; digits-ae
# x 24 seeds, 5 epochs: 8 0.39 s, 12 0.37, 24 0.40 -- a huge pass runs out of cache, a small one
# pays Python per pass.
CHUNK_ELEMENTS = 850_000


class _Passes:
    """The data passes of :class:`~.trainer.FusedGradientTrainer` (mixed into
    it): they read the trainer's active members, stacked parameters, groups,
    forward and objective, and change nothing but the parameters and the
    optimizer state."""

    def _train_epoch(self, x: Tensor, y: Tensor | None, epochs: list[int]) -> dict[str, list[float]]:
        """GradientTrainer.train_epoch for every active member: each its own permutation and noise."""
        n, bs = len(x), self.batch_size
        seeds = [epoch_seed(self.trainers[k].spec.seed, e) for k, e in zip(self.active, epochs)]
        perms = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(s)) for s in seeds])
        perms = perms.to(x.device)
        noise = _Noise([_MemberRNG(s, self.device) for s in seeds],
                       {key: tuple(rates[k] for k in self.active) for key, rates in self._rates.items()})
        self._streams = noise.rngs  # evaluation continues them, as the solo run's global generator goes on
        lrs = [self.trainers[k].optimizer.param_groups[0]["lr"] for k in self.active]
        for k in self.active:  # the fused step stands in for optimizer.step() (the scheduler checks it ran)
            self.trainers[k].optimizer._opt_called = True
        clips = [self.trainers[k].spec.grad_clip for k in self.active]
        w = self._scalars(epochs)
        totals: dict[str, Tensor] = {}
        K, c = len(self.active), self._chunk(min(bs, n))
        for i in range(0, n, bs):
            idx = perms[:, i:i + bs]
            losses, parts = [], {}
            for a in range(0, K, c):  # members in cache-sized chunks, each stepped while its gradients are hot
                b = min(a + c, K)
                self.forward.buffers = [t[a:b] for t in self.buffers]  # views: batch norm updates them in place
                loss, part, grads = self._loss_and_grads([p[a:b] for p in self.params], x, y, idx[a:b],
                                                         noise if c >= K else noise.slice(a, b), _rows(w, a, b))
                if any(clips[a:b]):
                    grads = _clip(grads, clips[a:b])
                with torch.no_grad():
                    for start, stop, group, _ in self.groups:
                        lo, hi = max(a, start), min(b, stop)
                        if lo < hi:
                            group.step([p[lo:hi] for p in self.params], [g[lo - a:hi - a] for g in grads],
                                       lrs[lo:hi], rows=(lo - start, hi - start))
                value = part.pop("_value", None)
                losses.append(loss if value is None else value)
                for name, v in part.items():
                    parts.setdefault(name, []).append(v)
            cat = (lambda vs: vs[0] if len(vs) == 1 else torch.cat(vs))
            _accumulate(totals, {"loss": cat(losses), **{k: cat(v) for k, v in parts.items()}}, idx.shape[1])
        return {k: [float(t) / n for t in v.cpu()] for k, v in totals.items()}

    def _loss_and_grads(self, stacks, x, y, idx, noise, w):
        params = [p.detach().requires_grad_() for p in stacks]
        yb = None if y is None else rows(y, idx)
        loss, parts = self.objective(self.forward, params, rows(x, idx), yb, noise, w)
        grads = torch.autograd.grad(loss.sum(), params)  # d(sum)/d(loss_k) = 1: each member's own gradient
        return loss.detach(), parts, grads

    def _chunk(self, batch: int) -> int:
        """Members per batched pass: ``chunk`` when given, else as many as keep
        the widest activation of a pass within CHUNK_ELEMENTS floats."""
        if self.chunk is not None:
            return max(1, self.chunk)
        return max(1, CHUNK_ELEMENTS // max(1, batch * self.widest))

    def _scalars(self, epochs: list[int]) -> dict[str, list[float]]:
        """The active members' loss weights this epoch (the objective's :meth:`~.losses._Objective.scalars`)."""
        return self.objective.scalars([self.model_specs[k] for k in self.active], epochs)

    @torch.no_grad()
    def _evaluate(self, x: Tensor, y: Tensor | None, epochs: list[int]) -> dict[str, list[float]]:
        """GradientTrainer.evaluate_loss for every active member (eval mode, chunks of 1024)."""
        K, w = len(self.active), self._scalars(epochs)
        w["streams"] = self._streams  # the members' generators after this epoch's training draws
        totals: dict[str, Tensor] = {}
        for i in range(0, len(x), EVAL_BATCH):
            xb = x[i:i + EVAL_BATCH]
            c = self._chunk(len(xb))
            losses, parts = [], {}
            for a in range(0, K, c):
                kc = min(c, K - a)
                xs = xb.unsqueeze(0).expand(kc, *xb.shape).contiguous()
                ys = None if y is None else y[i:i + EVAL_BATCH].unsqueeze(0).expand(kc, -1).contiguous()
                self.forward.buffers = [t[a:a + kc] for t in self.buffers]
                loss, part = self.objective(self.forward, [p[a:a + kc] for p in self.params], xs, ys, None,
                                            _rows(w, a, a + kc))
                value = part.pop("_value", None)
                losses.append(loss if value is None else value)
                for name, v in part.items():
                    parts.setdefault(name, []).append(v)
            _accumulate(totals, {"loss": torch.cat(losses), **{n: torch.cat(v) for n, v in parts.items()}}, len(xb))
        return {k: [float(t) / len(x) for t in v.cpu()] for k, v in totals.items()}


def _rows(w: dict[str, list[float]], a: int, b: int) -> dict[str, list[float]]:
    """The per-member scalars of members ``a:b`` (one pass's chunk)."""
    return {name: v[a:b] for name, v in w.items()}


def _clip(grads, clips: list[float | None]) -> list[Tensor]:
    """``torch.nn.utils.clip_grad_norm_`` per member, op for op (norm of the
    per-tensor norms; ``max_norm / (total + 1e-6)`` is torch's
    ``reciprocal() * max_norm``); a member without clipping gets factor 1."""
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(len(g), -1), 2, dim=1) for g in grads], dim=1)
    total = torch.linalg.vector_norm(norms, 2, dim=1)
    coef = torch.clamp((total + 1e-6).reciprocal() * _coef([c or 1.0 for c in clips], total.device), max=1.0)
    coef = torch.where(torch.tensor([bool(c) for c in clips], device=coef.device), coef, torch.ones_like(coef))
    return [g * coef.view(-1, *([1] * (g.dim() - 1))) for g in grads]


def _accumulate(totals: dict[str, Tensor], values: dict[str, Tensor], n: int) -> None:
    for k, v in values.items():
        totals[k] = totals[k] + v * n if k in totals else v * n
