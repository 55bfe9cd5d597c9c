"""The zoo's fused objectives: each family's loss for every member at once,
exactly as its solo objective computes it (each docstring names it).

Each is a :class:`~.losses.FusedLoss`: a function of the core objective
(:class:`~.losses._Objective`, whose shared pieces it uses: the summed
reconstruction, the VAE's forward), the per-member values it reads from the
members' model specs, and the check that refuses a group whose members need
different formulas or shapes.  Where the family has a solo function for a
penalty (MMD, the beta-TCVAE estimators, the IWAE bound, the sparsity and
RAE penalties, the DAE's corruption), it runs on each member's slice, so it
is the solo computation by construction; the network's forward and backward
and the optimizer stay fused.  Draws the solo objective takes from torch's
global generator come from the member's own stream
(:meth:`.noise._MemberRNG.drawing`), in evaluation too where the solo
objective draws there (the stream the member's training epoch left,
``w["streams"]``).
"""
from __future__ import annotations

import torch

from ...models.families.dae.corruption import corrupt
from ...models.families.iwae.bound import bound, codes, weights_of
from ...models.families.rae.penalty import code_penalty, decoder_l2
from ...models.families.sae.penalty import penalty
from ...models.families.tcvae.estimators import minibatch_terms
from ...models.families.wae.mmd import kernel_scales, mmd, prior_draws
from ..objectives import elementwise_loss
from .losses import CORE_LOSSES, FusedLoss, kld_stacked
from .scalars import _coef

Tensor = torch.Tensor


def _per_member(*fields: str):
    """``scalars``: each named model-spec field, one value per member."""
    return lambda specs, epochs: {f: [getattr(s, f) for s in specs] for f in fields}


def _shared(*fields: str):
    """``check``: members must agree on each named field (it picks the formula or a shape)."""
    def check(specs):
        for f in fields:
            values = sorted({getattr(s, f) for s in specs})
            if len(values) > 1:
                raise ValueError(f"fused training needs one model.{f} for all members, got {values}")
    return check


def _streams(noise, w) -> list:
    return noise.rngs if noise is not None else w["streams"]


def _coefs(w, name, like: Tensor) -> Tensor:
    return _coef([float(v) for v in w[name]], like.device)


# ---------------------------------------------------------------- dbvae


def _capacity(obj, fwd, params, x, y, noise, w):
    """The beta-VAE with a controlled capacity (Burgess et al. 2018, eq. 8),
    as ``dbvae_objective`` computes it: summed reconstruction + gamma |KL - C|,
    with KL each image's (then averaged) or the batch's mean."""
    recon, mu, logvar = obj._elbo_parts(fwd, params, x, noise, None)
    kl = kld_stacked(mu, logvar)  # (K, N)
    c = _coefs(w, "capacity", kl)
    held = (kl - c.view(-1, 1)).abs().mean(1) if w["capacity_of"][0] == "image" else (kl.mean(1) - c).abs()
    return recon + _coefs(w, "gamma", kl) * held, {"recon": recon.detach(), "kl": kl.mean(1).detach(), "capacity": c}


def _capacity_scalars(specs, epochs):
    return {"gamma": [s.gamma for s in specs], "capacity": [float(s.capacity(e)) for s, e in zip(specs, epochs)],
            "capacity_of": [s.capacity_of for s in specs]}


# ------------------------------------------------------------------ sae


def _sparse(obj, fwd, params, x, y, noise, w):
    """The sparse autoencoder (Ng's J_sparse), as ``sparse_objective``
    computes it: summed reconstruction + weight * the solo ``penalty`` of
    each member's codes."""
    z = fwd.part("to_latent", params, fwd.part("body", params, x, noise), noise)
    recon = obj._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
    sparse = torch.stack([penalty(w["sparsity"][k], zk, w["sparsity_target"][k]) for k, zk in enumerate(z.unbind(0))])
    value = recon + _coefs(w, "sparsity_weight", z) * sparse
    return value, {"recon": recon.detach(), "sparsity": sparse.detach()}


# ------------------------------------------------------------------ dae


def _denoising(obj, fwd, params, x, y, noise, w):
    """The denoising autoencoder (Vincent et al. 2008, §2.3): in training
    each member's batch corrupted by ``corrupt`` on the member's own stream,
    as the solo objective corrupts it from the global generator, first
    thing; the loss against the clean batch."""
    if noise is None:  # evaluation: the clean input, as the solo objective in eval mode
        return obj._reconstruct(fwd, params, x, y, noise, w)
    x_in = []
    for k, rng in enumerate(noise.rngs):
        with rng.drawing():
            x_in.append(corrupt(x[k], w["noise"][k], float(w["noise_level"][k])))
    return obj._reconstruct(fwd, params, x, y, noise, w, x_in=torch.stack(x_in))


# ---------------------------------------------------------- wae, infovae


def _member_mmd(z: Tensor, w: dict, noise, prior_scales: list[float]) -> Tensor:
    """Each member's solo ``mmd(z, prior_draws(z, s))`` on its codes, the
    draws from its own stream."""
    streams, out = _streams(noise, w), []
    for k, zk in enumerate(z.unbind(0)):
        with streams[k].drawing():
            p = prior_draws(zk, prior_scales[k])
        out.append(mmd(zk, p, w["kernel"][k], prior_scales[k], kernel_scales(w["multiscale"][k])))
    return torch.stack(out)


def _wasserstein(obj, fwd, params, x, y, noise, w):
    """The WAE-MMD (Tolstikhin et al. 2018, Algorithm 2), as ``wae_objective``
    computes it: summed reconstruction + lambda MMD(codes, prior draws)."""
    z = fwd.part("to_latent", params, fwd.part("body", params, x, noise), noise)
    recon = obj._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
    divergence = _member_mmd(z, w, noise, [float(s) for s in w["prior_scale"]])
    return recon + _coefs(w, "mmd_weight", z) * divergence, {"recon": recon.detach(), "mmd": divergence.detach()}


def _info(obj, fwd, params, x, y, noise, w):
    """The InfoVAE (Zhao et al. 2019, eq. 6), as ``infovae_objective``
    computes it: summed reconstruction + (1 - alpha) KL + (alpha + lambda - 1)
    MMD(sampled codes, N(0, I) draws)."""
    recon, mu, logvar, z = obj._elbo_parts(fwd, params, x, noise, None, codes=True)
    kl = kld_stacked(mu, logvar).mean(1)
    divergence = _member_mmd(z, w, noise, [1.0] * len(z))
    value = recon + _coefs(w, "kl_weight", z) * kl + _coefs(w, "mmd_term_weight", z) * divergence
    return value, {"recon": recon.detach(), "kl": kl.detach(), "mmd": divergence.detach()}


def _info_scalars(specs, epochs):  # eq. 6's weights, as infovae_objective computes them
    return {"kernel": [s.kernel for s in specs], "multiscale": [s.multiscale for s in specs],
            "kl_weight": [1.0 - s.alpha for s in specs], "mmd_term_weight": [s.alpha + s.mmd_weight - 1.0 for s in specs]}


# ---------------------------------------------------------------- tcvae


def _decomposed(obj, fwd, params, x, y, noise, w):
    """The beta-TCVAE (Chen et al. 2018, eq. 4), as ``tcvae_objective``
    computes it: summed reconstruction + alpha MI + beta TC + gamma
    dimension-wise KL, the solo ``minibatch_terms`` on each member's codes.
    The code is drawn in evaluation too, as the solo objective draws it."""
    h = fwd.part("body", params, x, noise)
    mu, logvar = fwd.part("to_mu", params, h, noise), fwd.part("to_logvar", params, h, noise)
    eps = torch.empty_like(mu)
    for k, rng in enumerate(_streams(noise, w)):
        rng.normal_(eps[k])  # solo: model.reparameterize's randn_like
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = obj._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
    terms = [minibatch_terms(zk, mk, lk, w["dataset_size"][k] or x.shape[1], w["estimator"][k])
             for k, (zk, mk, lk) in enumerate(zip(z.unbind(0), mu.unbind(0), logvar.unbind(0)))]
    mi, tc, dim = (torch.stack([t[name].mean() for t in terms]) for name in ("mi", "tc", "dimwise_kl"))
    value = recon + _coefs(w, "alpha", z) * mi + _coefs(w, "beta", z) * tc + _coefs(w, "gamma", z) * dim
    return value, {"recon": recon.detach(), "kl": kld_stacked(mu, logvar).mean(1).detach(), "mi": mi.detach(),
                   "tc": tc.detach(), "dimwise_kl": dim.detach()}


# ----------------------------------------------------------------- iwae


def _importance(obj, fwd, params, x, y, noise, w):
    """The IWAE's -L_k (Burda et al. 2016, eq. 8), as ``iwae_objective``
    computes it: k codes per image from the member's stream (in evaluation
    too, as the solo objective draws them), every member's codes decoded at
    once, the log weights and the bound per member by the solo functions."""
    h = fwd.part("body", params, x, noise)
    mu, logvar = fwd.part("to_mu", params, h, noise), fwd.part("to_logvar", params, h, noise)
    k = w["samples"][0]  # one k per group (check)
    eps = torch.empty((len(mu), k, *mu.shape[1:]), device=mu.device, dtype=mu.dtype)
    for m, rng in enumerate(_streams(noise, w)):
        rng.normal_(eps[m])  # solo: torch.randn((k, *mu.shape))
    z = torch.stack([codes(mu[m], logvar[m], eps[m]) for m in range(len(mu))])  # (K, k, N, D)
    x_hat = fwd.part("decoder", params, z.flatten(1, 2), noise)  # (K, k N, ...)
    fn = elementwise_loss(obj.loss)
    out = [weights_of(x[m], x_hat[m], z[m], logvar[m], eps[m], fn) for m in range(len(mu))]
    value = torch.stack([-bound(log_w).mean() for log_w, _ in out])
    recon = torch.stack([-log_px.mean() for _, log_px in out])
    return value, {"recon": recon.detach(), "kl": kld_stacked(mu, logvar).mean(1).detach()}


# ------------------------------------------------------------------ rae


def _regularized(obj, fwd, params, x, y, noise, w):
    """The RAE-L2 (Ghosh et al. 2020, eq. 11), as ``rae_objective`` computes
    it: summed reconstruction + beta mean ``code_penalty`` + lambda
    ``decoder_l2``, both the solo functions on each member's codes and own
    decoder parameters."""
    z = fwd.part("to_latent", params, fwd.part("body", params, x, noise), noise)
    recon = obj._summed(fwd.part("decoder", params, z, noise), x, fwd.exact)
    own = [params[i].unbind(0) for i in obj.decoder_params]
    code = torch.stack([code_penalty(zk).mean() for zk in z.unbind(0)])
    reg = torch.stack([decoder_l2(p[k] for p in own) for k in range(len(z))])
    value = recon + _coefs(w, "embedding_weight", z) * code + _coefs(w, "reg_weight", z) * reg
    return value, {"recon": recon.detach(), "code": code.detach(), "reg": reg.detach()}


def _l2_only(specs):
    if any(s.regularization != "l2" for s in specs):
        raise ValueError("fused training: RAE-GP's decoder Jacobian has no fused form (RAE-L2 fuses)")


FAMILY_LOSSES = {
    "capacity": FusedLoss(_capacity, _capacity_scalars, _shared("capacity_of")),
    "sparse": FusedLoss(_sparse, _per_member("sparsity", "sparsity_target", "sparsity_weight"), _shared("sparsity")),
    "denoising": FusedLoss(_denoising, _per_member("noise", "noise_level")),
    "wasserstein": FusedLoss(_wasserstein, _per_member("kernel", "multiscale", "prior_scale", "mmd_weight")),
    "info": FusedLoss(_info, _info_scalars),
    "decomposed": FusedLoss(_decomposed, _per_member("alpha", "beta", "gamma", "dataset_size", "estimator")),
    "importance": FusedLoss(_importance, _per_member("samples"), _shared("samples")),
    "regularized": FusedLoss(_regularized, _per_member("embedding_weight", "reg_weight"), _l2_only),
}
LOSSES = CORE_LOSSES | FAMILY_LOSSES  # every objective fused training computes, by its layout's name
