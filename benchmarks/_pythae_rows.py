"""The side-by-side table of ``pythae_zoo.py``: one :class:`Row` per family
that aelab and Pythae 0.1.2 both have, and how a row's aelab config becomes
the Pythae model-config fields of the same loss.

A row names the aelab family (``model.kind``), the shipped config whose data,
network, optimizer and batch size both sides use (``model`` replaces the
config's model section but keeps its network: encoder widths, latent size,
activations), the Pythae model class, and ``settings(spec, train, n)``
(n: the training images): the Pythae fields that give the same objective.  ``settings`` raises
:class:`Mismatch` when Pythae cannot express the config (then the row is
skipped with that reason, never run on a different loss).  ``notes`` says
what still differs.  No torch or pythae import at module level: ``--help``
and the family list work without either.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

MULTISCALE = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]  # aelab's wae.mmd.MULTISCALE, Pythae's default scales
NETWORK = ("encoder", "decoder", "latent_dim", "activation", "output_activation", "latent_activation")


class Mismatch(Exception):
    """The aelab config has no Pythae equivalent (the row is skipped, with this reason)."""


@dataclass(frozen=True)
class Row:
    name: str                 # --families name, table row label
    kind: str                 # aelab model.kind
    config: str               # shipped config: data, network, lr, batch size, loss
    pythae: str               # Pythae model class (pythae.models)
    settings: Callable        # (aelab model spec, train spec, training images) -> Pythae model-config fields
    model: dict | None = None  # replaces the config's model section (its network kept)
    overrides: tuple[str, ...] = ()
    code: str = "gaussian"    # encoder output: "gaussian" (mu, logvar), "deterministic" (z), "point" (z with
    #                           log-variance 0, for a deterministic posterior) or "vq" (z_e vectors)
    bound: str | None = "elbo"  # "elbo", "iwae" or "vamp": aelab's own evaluation of it (_pythae_side.bound)
    trainer: str = "base"     # Pythae trainer: "base" (BaseTrainer), "coupled" (CoupledOptimizerTrainer) or
    #                           "adversarial" (AdversarialTrainer; aelab's train.method adversarial)
    prepare: str | None = None  # more initial weights to copy: "pseudo_inputs" (VAMP), "codebook" (VQ-VAE)
    critic: str = "probability"  # what Pythae's discriminator returns: "probability" or "two_logits" (FactorVAE)
    notes: str = ""


# ------------------------------------------------------------ settings per family

def _loss(train, *allowed: str) -> str:
    if train.loss not in allowed:
        raise Mismatch(f"train.loss {train.loss}: Pythae's model takes {' or '.join(allowed)} here")
    return train.loss


def _unit_prior(spec) -> None:
    if getattr(spec, "prior_scale", 1.0) != 1.0:
        raise Mismatch(f"model.prior_scale {spec.prior_scale:g}: Pythae's prior is N(0, I)")


def _kl_warmup(spec) -> None:
    if getattr(spec, "kl_warmup", 0):
        raise Mismatch(f"model.kl_warmup {spec.kl_warmup}: Pythae has no KL warm-up (set it to 0)")


def _kernel(spec) -> dict:
    """Pythae's MMD: imq sums over ``scales`` times C = 2 d, rbf uses C alone."""
    _unit_prior(spec)
    if spec.kernel == "rbf" and spec.multiscale:
        raise Mismatch("model.multiscale with the rbf kernel: Pythae's rbf has one scale")
    return {"kernel_choice": spec.kernel, "kernel_bandwidth": 1.0,
            "scales": MULTISCALE if spec.multiscale else [1.0]}


def ae_settings(spec, train, n) -> dict:
    _loss(train, "mse")
    return {}


def vae_settings(spec, train, n) -> dict:
    _kl_warmup(spec)
    if spec.beta != 1.0:
        raise Mismatch(f"model.beta {spec.beta:g}: that is the betavae row")
    return {"reconstruction_loss": _loss(train, "bce")}


def betavae_settings(spec, train, n) -> dict:
    _kl_warmup(spec)
    return {"reconstruction_loss": _loss(train, "bce"), "beta": spec.beta}


def wae_settings(spec, train, n) -> dict:
    _loss(train, "mse")
    return {"reg_weight": spec.mmd_weight, **_kernel(spec)}


def infovae_settings(spec, train, n) -> dict:
    return {"reconstruction_loss": _loss(train, "bce"), "alpha": spec.alpha, "lbd": spec.mmd_weight,
            **_kernel(spec)}


def aae_settings(spec, train, n) -> dict:
    """Pythae's Adversarial_AE with a deterministic posterior; its "mse" is 1/2 the summed squared
    error, so the reconstruction scale 2 gives aelab's summed squared error."""
    if train.loss != "non_saturating" or train.n_critic != 1 or train.ema:
        raise Mismatch("train: Pythae's Adversarial_AE plays the non-saturating game, one D step per AE step, "
                       "no generator EMA")
    if spec.reconstruction not in ("mse", "bce"):
        raise Mismatch(f"model.reconstruction {spec.reconstruction}: Pythae takes mse or bce")
    return {"reconstruction_loss": spec.reconstruction, "deterministic_posterior": True,
            "reconstruction_loss_scale": 2.0 if spec.reconstruction == "mse" else 1.0,
            "adversarial_loss_scale": spec.adversarial_weight}


def factorvae_settings(spec, train, n) -> dict:
    """Pythae's FactorVAE: recon + KL + gamma TC, TC = logit_0 - logit_1 of a two-logit discriminator."""
    if train.loss != "non_saturating" or train.n_critic != 1 or train.ema:
        raise Mismatch("train: Pythae's FactorVAE plays the cross-entropy game, one D step per VAE step, "
                       "no generator EMA")
    if spec.reconstruction != "bce":
        raise Mismatch(f"model.reconstruction {spec.reconstruction}: Pythae's FactorVAE halves mse, with no scale")
    return {"reconstruction_loss": "bce", "gamma": spec.gamma}


def rae_settings(spec, train, n) -> dict:
    """RAE (Ghosh et al. 2020, eq. 11): recon + beta 1/2 ||z||^2 + lambda L_REG."""
    _loss(train, "mse")
    if spec.regularization != "l2":
        raise Mismatch("model.regularization gp: that is the rae-gp row")
    return {"embedding_weight": spec.embedding_weight, "reg_weight": spec.reg_weight}


def rae_gp_settings(spec, train, n) -> dict:
    raise Mismatch("Pythae's RAE_GP penalizes ||d sum(D(E(x))) / dx||^2, the gradient with respect to the input "
                   "through the encoder, not the paper's decoder Jacobian ||J_D(z)||_F^2 that aelab takes")


def iwae_settings(spec, train, n) -> dict:
    return {"reconstruction_loss": _loss(train, "bce"), "number_samples": spec.samples}


def vamp_settings(spec, train, n) -> dict:
    """Pythae's linear_scheduling_steps W weighs the KL epoch / W (epochs from 1): aelab's kl_warmup."""
    if spec.beta != 1.0:
        raise Mismatch(f"model.beta {spec.beta:g}: Pythae's VAMP has no beta")
    if spec.pseudo_activation != "hardtanh":
        raise Mismatch(f"model.pseudo_activation {spec.pseudo_activation}: Pythae's pseudo-inputs pass a hardtanh")
    return {"reconstruction_loss": _loss(train, "bce"), "number_components": spec.components,
            "linear_scheduling_steps": spec.kl_warmup}


def tcvae_settings(spec, train, n) -> dict:
    """Pythae's N is the training set's size; aelab's ``dataset_size`` (empty: the batch's) must be it
    under mss (under mws N only shifts the estimates by constants)."""
    if spec.estimator == "mss" and spec.dataset_size != n:
        raise Mismatch(f"model.dataset_size {spec.dataset_size}: Pythae's minibatch-stratified N is {n}")
    return {"reconstruction_loss": _loss(train, "bce"), "alpha": spec.alpha, "beta": spec.beta,
            "gamma": spec.gamma, "use_mss": spec.estimator == "mss"}


def dbvae_settings(spec, train, n) -> dict:
    return {"reconstruction_loss": _loss(train, "bce"), "beta": spec.gamma, "C": spec.capacity_max,
            "warmup_epoch": spec.capacity_epochs}


def vqvae_settings(spec, train, n) -> dict:
    """Pythae averages the two codebook terms over every code element, aelab sums them per image:
    the factors take latent_dim (elements per image) to match."""
    _loss(train, "mse")
    if spec.code_layout != "flat":
        raise Mismatch("model.code_layout spatial: the rows use dense networks")
    if spec.codebook != "loss":
        raise Mismatch("model.codebook ema: the EMA updates differ in their smoothing (Pythae's epsilon is fixed)")
    return {"num_embeddings": spec.codebook_size, "quantization_loss_factor": float(spec.latent_dim),
            "commitment_loss_factor": spec.commitment_cost * spec.latent_dim}


# ------------------------------------------------------------ the table
# Not a row: VAEGAN (Pythae gates the decoder's and the discriminator's updates by an
# equilibrium margin and trains three optimizers) -- not matched here.

ROWS: tuple[Row, ...] = (
    Row("ae", "ae", "mnist-wae", "AE", ae_settings, model={"kind": "ae"}, code="deterministic", bound=None,
        notes="aelab averages the squared error over pixels, Pythae sums it per image (a constant factor 784; "
              "Adam is invariant to it up to eps)"),
    Row("vae", "vae", "mnist-vae", "VAE", vae_settings, overrides=("model.kl_warmup=0",),
        notes="no KL warm-up (Pythae's VAE has none); BCE clips p to [1e-7, 1-1e-7] in aelab, log p to >= -100 "
              "in Pythae"),
    Row("betavae", "vae", "mnist-vae", "BetaVAE", betavae_settings,
        overrides=("model.kl_warmup=0", "model.beta=4"), notes="beta = 4; the bound is the beta = 1 ELBO"),
    Row("wae", "wae", "mnist-wae", "WAE_MMD", wae_settings, code="deterministic", bound=None,
        notes="the same unbiased MMD U-statistic and multiscale IMQ kernel"),
    Row("infovae", "infovae", "mnist-infovae", "INFOVAE_MMD", infovae_settings,
        notes="the same C = 2 d RBF kernel and U-statistic"),
    Row("aae", "aae", "mnist-aae", "Adversarial_AE", aae_settings, code="point", bound=None, trainer="adversarial",
        notes="aelab steps D on fresh codes, then the autoencoder; Pythae takes both gradients from one forward "
              "pass and steps both; the discriminator (784-256-8 codes -> 1000-1000-1) copied, its logit "
              "through a sigmoid for Pythae's BCE"),
    Row("factorvae", "factorvae", "mnist-factorvae", "FactorVAE", factorvae_settings, bound="elbo",
        trainer="adversarial", critic="two_logits",
        notes="both split each batch in halves (VAE / permuted codes); aelab's critic logit l given to Pythae as "
              "the logits (l, 0); Pythae halves D's cross-entropy, and its D loss also reaches the encoder (its "
              "codes are not detached); aelab steps D first on fresh codes"),
    Row("rae", "rae", "mnist-rae", "RAE_L2", rae_settings, code="deterministic", bound=None, trainer="coupled",
        notes="Pythae's decoder L2 is its optimizer's weight decay, set to 2 lambda (= lambda ||theta_D||^2 in "
              "the loss, aelab's); no FID (the ex-post GMM samplers are not compared)"),
    Row("rae-gp", "rae", "mnist-rae", "RAE_GP", rae_gp_settings, overrides=("model.regularization=gp",),
        code="deterministic", bound=None),
    Row("iwae", "iwae", "mnist-iwae", "IWAE", iwae_settings, bound="iwae",
        notes="k = 5; Pythae's loss is sum_i w~_i log w_i with detached weights: another value, the same "
              "gradient (eq. 14)"),
    Row("vamp", "vamp", "mnist-vamp", "VAMP", vamp_settings, bound="vamp", prepare="pseudo_inputs",
        notes="K = 500; Pythae's pseudo-input layer has a bias (set to 0 at the start, trained); the KL "
              "warm-up matches (epoch / 5)"),
    Row("tcvae", "tcvae", "mnist-tcvae", "BetaTCVAE", tcvae_settings,
        notes="beta = 6, minibatch-weighted sampling, N = 4,000"),
    Row("dbvae", "dbvae", "mnist-dbvae", "DisentangledBetaVAE", dbvae_settings,
        notes="C rises as epoch / 15 in aelab (epochs from 0), as (epoch + 1) / 16 in Pythae (from 1)"),
    Row("vqvae", "vqvae", "mnist-vqvae", "VQVAE", vqvae_settings, code="vq", bound=None, prepare="codebook",
        notes="4 vectors of D = 4 per image, K = 128; aelab's initial codebook copied into Pythae's"),
)


def by_name() -> dict[str, Row]:
    return {r.name: r for r in ROWS}
