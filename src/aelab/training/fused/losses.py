"""The core fused objectives (AE, VAE, conditional VAE, classifier) and
the pieces the zoo's build on (:mod:`.family_losses`): every member's loss
at once, each member's batch reduced exactly as the solo objective reduces it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ...models.conditioning import one_hot
from ..objectives import _bce, kl_weight
from .forward import _Forward
from .noise import _Noise
from .scalars import _coef

Tensor = torch.Tensor
_ATEN = torch.ops.aten


class _BCE(torch.autograd.Function):
    """:func:`aelab.training.objectives._bce` reduced per member -- ``mean``
    over all of a member's elements (AE) or ``sum`` over features then mean
    over samples (VAE) -- with the solo autograd's roundings in fewer passes.

    Solo: ``e = -(x * log(p) + (1 - x) * log1p(-p))``, ``p = clamp(q)``.  The
    negation is moved past the reductions (exact: ``fl(-a - b) = -fl(a + b)``),
    and the backward is the solo chain op for op: with ``g0 = -dL/de``
    (``-fl(1/M)``), ``t1 = g0 * x``, ``t2 = t1 / p``, ``t3 = g0 * (1 - x)``,
    ``t4 = t3 / ((-p) + 1)`` (log1p's backward), ``g_p = t2 - t4`` (== ``t2 +
    neg(t4)``), and clamp's ``where(min <= q <= max, g_p, 0)`` as ``p == q``
    (skipped when no element was clamped: one ``aminmax`` read in the
    forward instead of a comparison and a select in the backward)."""

    @staticmethod
    def forward(ctx, q, x, mode):
        """The solo loss's forward, negated after the reduction: (K,) values."""
        eps = 1e-7
        p = q.clamp(eps, 1 - eps)
        one_minus_x, neg_p = 1 - x, -p
        s = x * torch.log(p)
        s += one_minus_x * torch.log1p(neg_p)  # in place: the same single rounding as the solo add
        K = q.shape[0]
        if mode == "mean":
            value = s.reshape(K, -1).mean(1).neg_()
            ctx.scale = s[0].numel()
        else:  # sum over each sample's elements, mean over the samples
            value = s.flatten(2).sum(2).mean(1).neg_()
            ctx.scale = s.shape[1]
        lo, hi = torch.aminmax(q)  # one read: whether clamp changed anything (NaN: it did)
        ctx.clamped = not (float(lo) >= eps and float(hi) <= 1 - eps)
        ctx.save_for_backward(q, x, p, one_minus_x, neg_p)
        return value

    @staticmethod
    def backward(ctx, g):
        q, x, p, one_minus_x, neg_p = ctx.saved_tensors
        g0 = (g.neg() / ctx.scale).view(-1, *([1] * (q.dim() - 1)))  # mean backward: fl(g / n), negated
        t2 = (g0 * x).div_(p)
        t4 = (g0 * one_minus_x).div_(neg_p + 1)
        gp = t2.sub_(t4)
        if not ctx.clamped:  # clamp's backward passes every element through
            return gp, None, None
        return torch.where(p == q, gp, 0.0), None, None


class _MSE(torch.autograd.Function):
    """``mse_loss(q, x, reduction="none")`` reduced per member (``mean`` over
    a member's elements, AE; ``sum`` over them / samples, VAE), with the
    backward in one pass: ``mse_loss_backward`` (``2 * (q - x) * g``) with the
    per-member ``g = fl(grad / n)`` broadcast -- the values the autograd chain
    (mean or divide backward, then ``mse_loss_backward``) computes."""

    @staticmethod
    def forward(ctx, q, x, mode):
        K = q.shape[0]
        e = F.mse_loss(q, x, reduction="none").reshape(K, -1)
        if mode == "mean":
            value, ctx.scale = e.mean(1), e.shape[1]
        else:
            value, ctx.scale = e.sum(1) / q.shape[1], q.shape[1]
        ctx.save_for_backward(q, x)
        return value

    @staticmethod
    def backward(ctx, g):
        q, x = ctx.saved_tensors
        gk = (g / ctx.scale).view(-1, *([1] * (q.dim() - 1)))
        return _ATEN.mse_loss_backward(gk, q, x, 0), None, None  # reduction none: norm 2


class _Objective:
    """A family's loss for every member at once: ``(losses (K,), parts)``,
    each member's batch reduced exactly as the solo objective reduces it
    (:mod:`aelab.training.objectives`).  ``name`` is the layout's objective
    (:data:`.stack.LAYOUTS`, or a module's ``fused_layout``) names its
    entry: one of :data:`CORE_LOSSES` (``classify``, ``reconstruct``,
    ``variational``, ``conditional``) or of :data:`.family_losses.FAMILY_LOSSES`.

    Each call takes the stacked forward, the parameters, batches ``x`` (K, N,
    ...) and ``y``, ``noise`` (None: eval mode) and the members' values
    (:meth:`scalars`); it returns the losses (K,) and the parts (``acc``, or
    ``recon`` and ``kl``, ...; ``_value`` the classifier's reported loss)."""

    def __init__(self, entry: "FusedLoss", loss: str, num_classes: int | None = None, specs: list | None = None,
                 decoder_params: list[int] | None = None):
        """``entry``: the objective (:data:`.family_losses.LOSSES`); ``specs``:
        the members' model specs (an objective may refuse a group whose
        members need different formulas); ``decoder_params``: where the
        decoder's parameters are in the stack (the RAE's L2 term)."""
        self.entry, self.loss, self.num_classes = entry, loss, num_classes
        self.decoder_params = decoder_params or []
        entry.check(specs or [])

    def scalars(self, specs: list, epochs: list[int]) -> dict[str, list]:
        """Each member's per-epoch values the loss reads, from its model
        spec: the KL weight (beta, warm-up), and the objective's own
        (:attr:`FusedLoss.scalars`: gamma and C, penalty weights, ...)."""
        out = {"kl_w": [kl_weight(float(getattr(s, "beta", 1.0)), int(getattr(s, "kl_warmup", 0)), e)
                        for s, e in zip(specs, epochs)]}
        return out | self.entry.scalars(specs, epochs)

    def __call__(self, fwd: _Forward, params, x, y, noise: _Noise | None, w: dict[str, list]):
        """``w``: the members' :meth:`scalars` (this pass's members)."""
        return self.entry.run(self, fwd, params, x, y, noise, w)

    def _classify(self, fwd, params, x, y, noise, w):
        K = x.shape[0]
        logits = fwd.part("head", params, fwd.part("body", params, x, noise), noise)
        logp = F.log_softmax(logits, -1)
        value = F.nll_loss(logp.reshape(-1, logp.shape[-1]), y.reshape(-1), reduction="none").view(K, -1).mean(1)
        acc = (logits.argmax(-1) == y).float().mean(1)
        with torch.no_grad():  # the value as the solo nll_loss sums it (its own cascade); same gradient
            solo = torch.stack([F.nll_loss(logp[k], y[k]) for k in range(K)])
        return value, {"acc": acc.detach(), "_value": solo}

    def _reconstruct(self, fwd, params, x, y, noise, w, x_in=None):
        """``x_in``: what the encoder sees, when not ``x`` itself (the loss is always against ``x``)."""
        K = x.shape[0]
        h = fwd.part("body", params, x if x_in is None else x_in, noise)
        x_hat = fwd.part("decoder", params, fwd.part("to_latent", params, h, noise), noise)
        if self.loss == "bce":
            value = _BCE.apply(x_hat, x, "mean") if fwd.exact else _bce(x_hat, x).reshape(K, -1).mean(1)
        elif self.loss == "mse" and fwd.exact:
            value = _MSE.apply(x_hat, x, "mean")
        else:
            fn = F.mse_loss if self.loss == "mse" else F.l1_loss
            value = fn(x_hat, x, reduction="none").reshape(K, -1).mean(1)
        return value, {"recon": value.detach()}

    def _conditional(self, fwd, params, x, y, noise, w):
        """The conditional VAE (Sohn et al. 2015, eq. 4): the one-hot label
        beside the body's features and beside the code, as ``CVAE`` joins them."""
        return self._variational(fwd, params, x, y, noise, w, condition=one_hot(y, self.num_classes))

    def _variational(self, fwd, params, x, y, noise, w, condition=None):
        recon, mu, logvar = self._elbo_parts(fwd, params, x, noise, condition)
        kl = kld_stacked(mu, logvar).mean(1)
        value = recon + _coef(w["kl_w"], kl.device) * kl
        return value, {"recon": recon.detach(), "kl": kl.detach()}

    def _elbo_parts(self, fwd, params, x, noise, condition, codes: bool = False):
        """The summed reconstruction (K,), mu and logvar of every member's
        batch: the VAE's forward (a code drawn in training, mu in evaluation);
        ``codes``: the codes z too."""
        h = fwd.part("body", params, x, noise)
        if condition is not None:
            h = torch.cat([h.flatten(2), condition], dim=2)
        mu = fwd.part("to_mu", params, h, noise)
        logvar = fwd.part("to_logvar", params, h, noise)
        if noise is not None:  # VAE.reparameterize; each member's eps from its own generator
            eps = torch.empty_like(mu)
            for k, rng in enumerate(noise.rngs):
                rng.normal_(eps[k])
            z = mu + torch.exp(0.5 * logvar) * eps
        else:
            z = mu
        if condition is not None:
            z = torch.cat([z, condition.to(z.dtype)], dim=2)
        recon = self._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
        return (recon, mu, logvar, z) if codes else (recon, mu, logvar)

    def _summed(self, x_hat: Tensor, x: Tensor, exact: bool) -> Tensor:
        """:func:`~aelab.training.objectives.summed_loss` per member (K,):
        summed over each example's elements, averaged over the batch
        (``exact``: with the solo autograd's roundings, :class:`_BCE`/:class:`_MSE`)."""
        if self.loss == "bce":
            return _BCE.apply(x_hat, x, "sum") if exact else _bce(x_hat, x).flatten(2).sum(2).mean(1)
        if self.loss == "mse" and exact:
            return _MSE.apply(x_hat, x, "sum")
        fn = F.mse_loss if self.loss == "mse" else F.l1_loss
        return fn(x_hat, x, reduction="none").reshape(x.shape[0], -1).sum(1) / x.shape[1]


@dataclass(frozen=True)
class FusedLoss:
    """One fused objective: ``run(objective, fwd, params, x, y, noise, w)``
    -> (losses (K,), parts); ``scalars(specs, epochs)``: the per-member
    values it reads beside the KL weight; ``check(specs)``: a ValueError for
    a group whose members need different formulas or shapes."""

    run: Callable
    scalars: Callable[[list, list[int]], dict] = lambda specs, epochs: {}
    check: Callable[[list], None] = lambda specs: None


CORE_LOSSES = {"classify": FusedLoss(_Objective._classify), "reconstruct": FusedLoss(_Objective._reconstruct),
               "variational": FusedLoss(_Objective._variational), "conditional": FusedLoss(_Objective._conditional)}


def kld_stacked(mu: Tensor, logvar: Tensor) -> Tensor:
    """:func:`aelab.models.autoencoder.kld` over (K, N, latent): (K, N)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=2)
