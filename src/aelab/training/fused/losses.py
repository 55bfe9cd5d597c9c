"""The families' losses for every member at once, each member's batch
reduced exactly as the solo objective reduces it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...models.conditioning import one_hot
from ...models.families.dae.corruption import corrupt
from ...models.families.iwae.bound import bound, codes, weights_of
from ...models.families.tcvae.estimators import minibatch_terms
from ...models.families.wae.mmd import kernel_scales, mmd, prior_draws
from ..objectives import _bce, elementwise_loss, kl_weight
from .forward import _Forward
from .noise import _Noise
from .scalars import _coef

Tensor = torch.Tensor
_ATEN = torch.ops.aten
SPARSE_EPS = 1e-6  # aelab.models.families.sae.penalty.EPS (a family module: not imported from here)


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
    (:data:`.stack.LAYOUTS`): ``classify``, ``reconstruct``, ``variational``,
    ``conditional`` (``num_classes``: the conditional model's) or
    ``capacity`` (the dbvae's), ``sparse`` (the sae's), ``denoising``
    (the dae's), ``wasserstein`` (the wae's), ``info`` (the infovae's) or
    ``decomposed`` (the tcvae's), ``regularized`` (the RAE-L2's) or
    ``importance`` (the IWAE's).

    Each call takes the stacked forward, the parameters, batches ``x`` (K, N,
    ...) and ``y``, ``noise`` (None: eval mode) and each member's KL weight;
    it returns the losses (K,) and the parts (``acc``, or ``recon`` and
    ``kl``; ``_value`` the classifier's reported loss)."""

    def __init__(self, name: str, loss: str, num_classes: int | None = None, specs: list | None = None,
                 decoder_params: list[int] | None = None):
        """``specs``: the members' model specs (a capacity group must hold
        each image's KL, or the batch's, in every member alike);
        ``decoder_params``: where the decoder's parameters are in the stack
        (the RAE's L2 term)."""
        self.name, self.loss, self.num_classes = name, loss, num_classes
        self.decoder_params = decoder_params or []
        self._run = {"classify": self._classify, "reconstruct": self._reconstruct,
                     "variational": self._variational, "conditional": self._conditional,
                     "capacity": self._capacity, "sparse": self._sparse, "denoising": self._denoising,
                     "wasserstein": self._wasserstein, "info": self._info, "decomposed": self._decomposed,
                     "regularized": self._regularized, "importance": self._importance}[name]
        if name == "importance":
            _one(specs, "samples")  # k sets the shape of the codes decoded at once
        if name == "regularized" and _one(specs, "regularization") != "l2":
            raise ValueError("fused training: RAE-GP's decoder Jacobian has no fused form (RAE-L2 fuses)")
        if name == "capacity":
            self.per_image = _one(specs, "capacity_of") == "image"
        if name == "sparse":
            self.sparsity = _one(specs, "sparsity")

    def scalars(self, specs: list, epochs: list[int]) -> dict[str, list[float]]:
        """Each member's per-epoch loss weights, from its model spec: the KL
        weight (beta, warm-up), and for the capacity objective gamma and C."""
        out = {"kl_w": [kl_weight(float(getattr(s, "beta", 1.0)), int(getattr(s, "kl_warmup", 0)), e)
                        for s, e in zip(specs, epochs)]}
        if self.name == "capacity":
            out["gamma"] = [float(s.gamma) for s in specs]
            out["capacity"] = [float(s.capacity(e)) for s, e in zip(specs, epochs)]
        if self.name in ("wasserstein", "info"):
            out["kernel"] = [s.kernel for s in specs]
            out["scales"] = [kernel_scales(s.multiscale) for s in specs]
        if self.name == "wasserstein":
            out["weight"] = [float(s.mmd_weight) for s in specs]
            out["prior_scale"] = [float(s.prior_scale) for s in specs]
        if self.name == "info":  # eq. 6's weights, as infovae_objective computes them
            out["kl_weight"] = [1.0 - s.alpha for s in specs]
            out["mmd_weight"] = [s.alpha + s.mmd_weight - 1.0 for s in specs]
        if self.name == "importance":
            out["samples"] = [int(s.samples) for s in specs]
        if self.name == "regularized":
            out["beta"] = [float(s.embedding_weight) for s in specs]
            out["lam"] = [float(s.reg_weight) for s in specs]
        if self.name == "decomposed":
            for field in ("alpha", "beta", "gamma"):
                out[field] = [float(getattr(s, field)) for s in specs]
            out["dataset_size"] = [s.dataset_size for s in specs]
            out["estimator"] = [s.estimator for s in specs]
        if self.name == "denoising":
            out["noise"] = [s.noise for s in specs]  # a corruption's name: per member, like its level
            out["level"] = [float(s.noise_level) for s in specs]
        if self.name == "sparse":
            out["weight"] = [float(s.sparsity_weight) for s in specs]
            out["rho"] = [float(s.sparsity_target) for s in specs]
            out["1-rho"] = [1 - r for r in out["rho"]]  # as the solo objective rounds it: in Python floats
        return out

    def __call__(self, fwd: _Forward, params, x, y, noise: _Noise | None, w: dict[str, list[float]]):
        """``w``: the members' :meth:`scalars` (this pass's members)."""
        return self._run(fwd, params, x, y, noise, w)

    def _classify(self, fwd, params, x, y, noise, w):
        K = x.shape[0]
        logits = fwd.part("head", params, fwd.part("body", params, x, noise), noise)
        logp = F.log_softmax(logits, -1)
        value = F.nll_loss(logp.reshape(-1, logp.shape[-1]), y.reshape(-1), reduction="none").view(K, -1).mean(1)
        acc = (logits.argmax(-1) == y).float().mean(1)
        with torch.no_grad():  # the value as the solo nll_loss sums it (its own cascade); same gradient
            solo = torch.stack([F.nll_loss(logp[k], y[k]) for k in range(K)])
        return value, {"acc": acc.detach(), "_value": solo}

    def _wasserstein(self, fwd, params, x, y, noise, w):
        """The WAE-MMD (Tolstikhin et al. 2018, Algorithm 2), as ``wae_objective``
        computes it: summed reconstruction + lambda MMD(codes, prior draws)."""
        h = fwd.part("body", params, x, noise)
        z = fwd.part("to_latent", params, h, noise)
        recon = self._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
        divergence = _member_mmd(z, w, noise, w["prior_scale"])
        value = recon + _coef(w["weight"], z.device) * divergence
        return value, {"recon": recon.detach(), "mmd": divergence.detach()}

    def _info(self, fwd, params, x, y, noise, w):
        """The InfoVAE (Zhao et al. 2019, eq. 6), as ``infovae_objective``
        computes it: summed reconstruction + (1 - alpha) KL + (alpha + lambda - 1)
        MMD(sampled codes, N(0, I) draws)."""
        recon, mu, logvar, z = self._elbo_parts(fwd, params, x, noise, None, codes=True)
        kl = kld_stacked(mu, logvar).mean(1)
        divergence = _member_mmd(z, w, noise, [1.0] * len(z))
        value = recon + _coef(w["kl_weight"], z.device) * kl + _coef(w["mmd_weight"], z.device) * divergence
        return value, {"recon": recon.detach(), "kl": kl.detach(), "mmd": divergence.detach()}

    def _importance(self, fwd, params, x, y, noise, w):
        """The IWAE's -L_k (Burda et al. 2016, eq. 8), as ``iwae_objective``
        computes it: k codes per image drawn from the member's stream (in
        evaluation too, as the solo objective draws them), every member's
        codes decoded at once, the log weights and the bound per member by
        the solo functions (``weights_of``, ``bound``)."""
        h = fwd.part("body", params, x, noise)
        mu = fwd.part("to_mu", params, h, noise)
        logvar = fwd.part("to_logvar", params, h, noise)
        streams = noise.rngs if noise is not None else w["streams"]
        k = w["samples"][0]  # one k in the group (checked when the objective was made)
        eps = torch.empty((len(mu), k, *mu.shape[1:]), device=mu.device, dtype=mu.dtype)
        for m, rng in enumerate(streams):
            rng.normal_(eps[m])  # solo: torch.randn((k, *mu.shape))
        z = torch.stack([codes(mu[m], logvar[m], eps[m]) for m in range(len(mu))])  # (K, k, N, D)
        x_hat = fwd.part("decoder", params, z.flatten(1, 2), noise)  # (K, k N, ...)
        fn = elementwise_loss(self.loss)
        out = [weights_of(x[m], x_hat[m], z[m], logvar[m], eps[m], fn) for m in range(len(mu))]
        value = torch.stack([-bound(log_w).mean() for log_w, _ in out])
        recon = torch.stack([-log_px.mean() for _, log_px in out])
        return value, {"recon": recon.detach(), "kl": kld_stacked(mu, logvar).mean(1).detach()}

    def _regularized(self, fwd, params, x, y, noise, w):
        """The RAE-L2 (Ghosh et al. 2020, eq. 11), as ``rae_objective``
        computes it: summed reconstruction + beta mean 1/2 ||z||^2 + lambda
        ||theta_D||^2, the last the solo ``decoder_l2`` sum on each member's
        own decoder parameters."""
        h = fwd.part("body", params, x, noise)
        z = fwd.part("to_latent", params, h, noise)
        recon = self._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
        code = (0.5 * z.pow(2).sum(2)).mean(1)  # code_penalty per example, averaged
        own = [params[i].unbind(0) for i in self.decoder_params]
        reg = torch.stack([sum(p[k].pow(2).sum() for p in own) for k in range(len(z))])
        value = recon + _coef(w["beta"], z.device) * code + _coef(w["lam"], z.device) * reg
        return value, {"recon": recon.detach(), "code": code.detach(), "reg": reg.detach()}

    def _decomposed(self, fwd, params, x, y, noise, w):
        """The beta-TCVAE (Chen et al. 2018, eq. 4), as ``tcvae_objective``
        computes it: summed reconstruction + alpha MI + beta TC + gamma
        dimension-wise KL, the solo ``minibatch_terms`` on each member's codes.
        The code is drawn in evaluation too, as the solo objective draws it
        (from the stream the member's training epoch left)."""
        h = fwd.part("body", params, x, noise)
        mu = fwd.part("to_mu", params, h, noise)
        logvar = fwd.part("to_logvar", params, h, noise)
        streams = noise.rngs if noise is not None else w["streams"]
        eps = torch.empty_like(mu)
        for k, rng in enumerate(streams):
            rng.normal_(eps[k])
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = self._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
        terms = [minibatch_terms(zk, mk, lk, w["dataset_size"][k] or x.shape[1], w["estimator"][k])
                 for k, (zk, mk, lk) in enumerate(zip(z.unbind(0), mu.unbind(0), logvar.unbind(0)))]
        mi, tc, dim = (torch.stack([t[name].mean() for t in terms]) for name in ("mi", "tc", "dimwise_kl"))
        c = (lambda name: _coef(w[name], z.device))
        value = recon + c("alpha") * mi + c("beta") * tc + c("gamma") * dim
        return value, {"recon": recon.detach(), "kl": kld_stacked(mu, logvar).mean(1).detach(), "mi": mi.detach(),
                       "tc": tc.detach(), "dimwise_kl": dim.detach()}

    def _denoising(self, fwd, params, x, y, noise, w):
        """The denoising autoencoder (Vincent et al. 2008, §2.3): in training
        each member's batch corrupted by ``corrupt`` on the member's own
        stream, as the solo objective corrupts it from the global generator,
        first thing; the loss against the clean batch."""
        if noise is None:  # evaluation: the clean input, as the solo objective in eval mode
            return self._reconstruct(fwd, params, x, y, noise, w)
        x_in = []
        for k, rng in enumerate(noise.rngs):
            with rng.drawing():
                x_in.append(corrupt(x[k], w["noise"][k], w["level"][k]))
        return self._reconstruct(fwd, params, x, y, noise, w, x_in=torch.stack(x_in))

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

    def _capacity(self, fwd, params, x, y, noise, w):
        """The beta-VAE with a controlled capacity (Burgess et al. 2018, eq. 8),
        as ``dbvae_objective`` computes it: summed reconstruction + gamma |KL - C|,
        with KL each image's (then averaged) or the batch's mean."""
        recon, mu, logvar = self._elbo_parts(fwd, params, x, noise, None)
        kl = kld_stacked(mu, logvar)  # (K, N)
        c = _coef(w["capacity"], kl.device)
        held = (kl - c.view(-1, 1)).abs().mean(1) if self.per_image else (kl.mean(1) - c).abs()
        value = recon + _coef(w["gamma"], kl.device) * held
        return value, {"recon": recon.detach(), "kl": kl.mean(1).detach(), "capacity": c}

    def _sparse(self, fwd, params, x, y, noise, w):
        """The sparse autoencoder (Ng's J_sparse), as ``sparse_objective``
        computes it: summed reconstruction + weight * the codes' penalty,
        ``kl_sparsity`` (``rho / rho_hat`` is torch's ``rho_hat.reciprocal() *
        rho``, as a Python float over a tensor runs) or ``l1_sparsity``."""
        h = fwd.part("body", params, x, noise)
        z = fwd.part("to_latent", params, h, noise)
        recon = self._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
        coef = lambda name: _coef(w[name], z.device).view(-1, 1)
        if self.sparsity == "kl":
            rho_hat = z.mean(1).clamp(SPARSE_EPS, 1 - SPARSE_EPS)  # (K, s)
            rho, rest = coef("rho"), coef("1-rho")
            sparse = (rho * torch.log(rho_hat.reciprocal() * rho)
                      + rest * torch.log((1 - rho_hat).reciprocal() * rest)).sum(1)
        else:
            sparse = z.abs().flatten(2).sum(2).mean(1)
        value = recon + _coef(w["weight"], z.device) * sparse
        return value, {"recon": recon.detach(), "sparsity": sparse.detach()}

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


def _member_mmd(z: Tensor, w: dict, noise: _Noise | None, prior_scales: list[float]) -> Tensor:
    """Each member's MMD between its codes (K, N, d) and as many prior
    draws: the solo ``mmd(z, prior_draws(z, s))`` on the member's slice, its
    draws taken from the member's stream (in evaluation too, where the solo
    objective also draws: the stream the training epoch left, ``w["streams"]``)."""
    streams = noise.rngs if noise is not None else w["streams"]
    out = []
    for k, zk in enumerate(z.unbind(0)):
        with streams[k].drawing():
            p = prior_draws(zk, prior_scales[k])
        out.append(mmd(zk, p, w["kernel"][k], prior_scales[k], w["scales"][k]))
    return torch.stack(out)


def _one(specs: list, field: str):
    """The value of ``model.<field>`` all members share (it picks the formula)."""
    values = sorted({getattr(s, field) for s in specs})
    if len(values) > 1:
        raise ValueError(f"fused training needs one model.{field} for all members, got {values}")
    return values[0]


def kld_stacked(mu: Tensor, logvar: Tensor) -> Tensor:
    """:func:`aelab.models.autoencoder.kld` over (K, N, latent): (K, N)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=2)
