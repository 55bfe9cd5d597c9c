"""Both sides of one ``pythae_zoo.py`` row: aelab's trainer and Pythae's on
copies of the same modules, timed one epoch at a time, and the test metrics
both are scored with by one implementation.

* :class:`AelabSide` -- ``GradientTrainer.train_epoch`` after the per-epoch
  global seeding that ``GradientTrainer._one_epoch`` does (no validation
  pass: Pythae's ``train_step`` has none either); for an adversarial family
  ``AdversarialTrainer._epoch``.
* :class:`PythaeSide` -- the aelab model's encoder and decoder, deep-copied
  (same initial weights), wrapped as Pythae ``BaseEncoder``/``BaseDecoder``
  returning ``ModelOutput(embedding=, log_covariance=)`` and
  ``ModelOutput(reconstruction=)``, inside the Pythae model the row names;
  trained by Pythae's own ``train_step(epoch)`` (``BaseTrainer``'s, or the
  coupled / adversarial trainer's the row names: its DataLoader
  over a ``BaseDataset``, ``model.forward``, ``loss.backward``,
  ``optimizer.step``, ``loss.item()`` per batch, ``model.update()``).  An
  adversarial row's discriminator is copied too (:func:`wrappers`).  Its
  tqdm progress bar is removed (nothing else of the trainer is).  It runs on
  its own torch RNG stream (seeded by Pythae's ``set_seed``), swapped in and
  out around each epoch outside the timed region, so aelab's per-epoch
  seeding does not leak into Pythae's shuffles and noise.
* :class:`AsAelab` -- a Pythae model seen through aelab's model interface
  (``encode``/``decode``/``embed``/``sample``/``forward``), so
  ``aelab.evaluation`` and ``aelab.generation`` score both models with the
  same code.
"""
from __future__ import annotations

import copy
import logging
import math
import time

import numpy as np
import torch
from torch import nn

from _pythae_rows import Mismatch

from aelab.models.family import DECODE, EMBED, GENERATIVE
from aelab.training.gradient import GradientTrainer, epoch_seed
from aelab.training.objectives import elementwise_loss, make_objective


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class AelabSide:
    """aelab's training path, one epoch per call: the gradient trainer's
    ``train_epoch``, or for ``train.method: adversarial`` the adversarial
    trainer's ``_epoch`` (as benchmarks/gan_epoch.py times it)."""

    def __init__(self, model, cfg, x, device):
        self.model, self.x, self.seed, self.device = model, x, cfg.train.seed, device
        self.adversarial = cfg.train.method == "adversarial"
        if self.adversarial:
            from aelab.training.methods.adversarial.trainer import Monitor
            from aelab.training.registry import trainer
            self.trainer = trainer("adversarial").make(model, cfg, [])
            self.trainer.monitor = Monitor(model, x, self.seed)  # what AdversarialTrainer.fit sets up
        else:
            self.trainer = GradientTrainer(model, make_objective(cfg.model, cfg.train), cfg.train)
        self.epoch = 0

    def _adversarial_epoch(self) -> float:
        self.trainer._epoch(self.x, None)  # seeds itself per epoch
        status = self.trainer.state.status
        return self.trainer.state.history[-1]["train_loss"] if status == "running" else math.nan

    def run_epoch(self) -> float:
        sync(self.device)
        t = time.perf_counter()
        if self.adversarial:
            loss = self._adversarial_epoch()
        else:
            torch.manual_seed(epoch_seed(self.seed, self.epoch))  # what _one_epoch does before train_epoch
            loss = self.trainer.train_epoch(self.x, None, self.epoch)["loss"]
        sync(self.device)
        t = time.perf_counter() - t
        self.epoch += 1
        if not math.isfinite(loss):
            raise FloatingPointError(f"aelab: loss {loss} in epoch {self.epoch}")
        return t


# ------------------------------------------------------------ Pythae

def silence_pythae() -> None:
    """Pythae's trainer logs INFO lines to the console on every start."""
    import pythae.models  # noqa: F401 -- their loggers exist once imported
    import pythae.trainers  # noqa: F401
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)


def wrappers(model: nn.Module, code: str, critic: str = "probability"):
    """Pythae encoder and decoder over deep copies of ``model``'s own modules.
    ``vq``: the code z_e (B, M * D) goes to Pythae as (B, D, 1, M), which its
    VQVAE reads as M vectors of D (aelab's flat layout); the decoder takes
    the quantized vectors back to (B, M * D)."""
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder
    parts = ("body", "to_mu", "to_logvar") if code == "gaussian" else ("body", "to_latent")
    missing = [p for p in parts + ("decoder",) if not hasattr(model, p)]
    if missing:
        raise Mismatch(f"aelab's {model.kind} module has no {', '.join(missing)} to hand to Pythae")
    twin = copy.deepcopy(model)
    d = model.quantizer.dim if code == "vq" else None

    class Encoder(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            for p in parts:
                setattr(self, p, getattr(twin, p))

        def forward(self, x):
            h = self.body(x)
            if code == "gaussian":
                return ModelOutput(embedding=self.to_mu(h), log_covariance=self.to_logvar(h))
            z = self.to_latent(h)
            if code == "vq":
                z = z.reshape(len(z), -1, d).transpose(1, 2).unsqueeze(2)  # (B, D, 1, M)
            if code == "point":
                return ModelOutput(embedding=z, log_covariance=torch.zeros_like(z))
            return ModelOutput(embedding=z)

    class Decoder(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.decoder = twin.decoder

        def forward(self, z):
            if z.dim() == 4:  # quantized (B, D, 1, M) -> (B, M * D)
                z = z.squeeze(2).transpose(1, 2).reshape(len(z), -1)
            return ModelOutput(reconstruction=self.decoder(z))

    class Discriminator(BaseDiscriminator):
        """aelab's critic: its logit l through a sigmoid (Pythae's Adversarial_AE takes probabilities),
        or as the two logits (l, 0), whose softmax is (sigmoid(l), 1 - sigmoid(l)) (its FactorVAE)."""

        def __init__(self):
            BaseDiscriminator.__init__(self)
            self.discriminator = twin.discriminator

        def forward(self, z):
            logit = self.discriminator(z)
            if critic == "two_logits":
                return torch.cat([logit, torch.zeros_like(logit)], dim=1)
            return ModelOutput(embedding=torch.sigmoid(logit))

    return Encoder(), Decoder(), (Discriminator() if hasattr(twin, "discriminator") else None)


@torch.no_grad()
def copy_initial(what: str | None, pythae_model, aelab_model) -> None:
    """The initial weights a row's Pythae model makes on its own, set to aelab's."""
    if what == "pseudo_inputs":  # u_k = hardtanh(W e_k + b): W = aelab's pseudo-inputs, b = 0
        layer = pythae_model.pseudo_inputs[0]
        layer.weight.copy_(aelab_model.pseudo.T)
        layer.bias.zero_()
    elif what == "codebook":
        pythae_model.quantizer.embeddings.weight.copy_(aelab_model.quantizer.embedding)


def _config_class(models, name: str):
    for cand in (f"{name}Config", f"{name}_Config"):
        if hasattr(models, cand):
            return getattr(models, cand)
    raise Mismatch(f"pythae.models has no config class for {name}")


def optimizer_params(train) -> dict:
    """Adam's arguments as aelab's make_optimizer passes them; what Pythae's trainer cannot do is a Mismatch."""
    if train.optimizer != "adam" or train.optimizer_defaults == "keras":
        raise Mismatch(f"train.optimizer {train.optimizer}: the rows compare Adam with torch's defaults")
    if train.schedule != "none" or train.grad_clip:
        raise Mismatch("train.schedule / train.grad_clip: not matched on the Pythae side")
    return {"weight_decay": train.weight_decay,
            **{k: tuple(v) if isinstance(v, list) else v for k, v in train.optimizer_args.items()}}


class OwnRNG:
    """A torch RNG stream of its own: ``with rng:`` swaps it in, then out."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.state = self.cuda_state = None

    def __enter__(self):
        self.saved = torch.get_rng_state(), (torch.cuda.get_rng_state() if self.cuda else None)
        if self.state is not None:
            torch.set_rng_state(self.state)
            if self.cuda:
                torch.cuda.set_rng_state(self.cuda_state)
        return self

    def __exit__(self, *exc):
        self.state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state() if self.cuda else None
        torch.set_rng_state(self.saved[0])
        if self.cuda:
            torch.cuda.set_rng_state(self.saved[1])
        return False


class PythaeSide:
    """Pythae's model of the row on copies of the aelab model's modules, one ``train_step`` per call."""

    def __init__(self, row, aelab_model, cfg, data, device, out_dir: str, epochs: int):
        import pythae.models as PM
        from pythae.data.datasets import BaseDataset
        spec, train = cfg.model, cfg.train
        self.fields = fields = row.settings(spec, train, len(data.x_train))
        enc, dec, disc = wrappers(aelab_model, row.code, row.critic)
        mcfg = _config_class(PM, row.pythae)(input_dim=tuple(data.shape), latent_dim=spec.latent_dim, **fields)
        self.model = getattr(PM, row.pythae)(mcfg, encoder=enc, decoder=dec)
        if row.trainer == "adversarial":
            self.model.set_discriminator(disc)  # FactorVAE's constructor takes none
        copy_initial(row.prepare, self.model, aelab_model)
        x = torch.as_tensor(data.x_train)
        labels = torch.as_tensor(data.y_train) if data.y_train is not None else torch.zeros(len(x))
        self.rng, self.device, self.epoch = OwnRNG(device), device, 0
        with self.rng:
            self.trainer = self._trainer(row, fields, train, BaseDataset(x, labels), out_dir, epochs)
            self.trainer.prepare_training()  # Pythae's set_seed(train.seed), optimizer, callbacks
        self.trainer.callback_handler.callbacks = [
            c for c in self.trainer.callback_handler.callbacks if type(c).__name__ != "ProgressBarCallback"]

    def _trainer(self, row, fields, train, dataset, out_dir, epochs):
        import pythae.trainers as PT
        common = dict(output_dir=out_dir, num_epochs=epochs, per_device_train_batch_size=train.batch_size,
                      per_device_eval_batch_size=train.batch_size, seed=train.seed,
                      no_cuda=self.device.type != "cuda", steps_saving=None)
        if row.trainer == "adversarial":  # aelab's lr_g / betas for the autoencoder, lr_d / betas_d for D
            tcfg = PT.AdversarialTrainerConfig(
                **common, autoencoder_learning_rate=train.lr_g, discriminator_learning_rate=train.lr_d,
                autoencoder_optimizer_params={"betas": tuple(train.betas)},
                discriminator_optimizer_params={"betas": tuple(train.betas_d or train.betas)})
            return PT.AdversarialTrainer(self.model, dataset, training_config=tcfg)
        params = optimizer_params(train)
        if row.trainer == "coupled":  # RAE-L2: lambda ||theta_D||^2 as the decoder optimizer's weight decay 2 lambda
            tcfg = PT.CoupledOptimizerTrainerConfig(
                **common, encoder_learning_rate=train.lr, decoder_learning_rate=train.lr,
                encoder_optimizer_params=params,
                decoder_optimizer_params=params | {"weight_decay": 2 * fields["reg_weight"]})
            return PT.CoupledOptimizerTrainer(self.model, dataset, training_config=tcfg)
        tcfg = PT.BaseTrainerConfig(**common, learning_rate=train.lr, optimizer_cls="Adam", optimizer_params=params)
        return PT.BaseTrainer(self.model, dataset, training_config=tcfg)

    def run_epoch(self) -> float:
        with self.rng:
            sync(self.device)
            t = time.perf_counter()
            loss = self.trainer.train_step(self.epoch + 1)  # Pythae counts epochs from 1
            sync(self.device)
            t = time.perf_counter() - t
        self.epoch += 1
        loss = loss[0] if isinstance(loss, tuple) else loss  # the coupled trainers add the parts
        if not math.isfinite(loss):
            raise FloatingPointError(f"pythae: loss {loss} in epoch {self.epoch}")
        return t


class AsAelab(nn.Module):
    """A trained Pythae model behind aelab's model interface (eval only)."""

    kind = "pythae"

    def __init__(self, pythae_model, code: str, prior: bool):
        super().__init__()
        self.pm, self.code = pythae_model, code
        self.latent_dim = pythae_model.model_config.latent_dim
        self.capabilities = frozenset({EMBED, DECODE} | ({GENERATIVE} if prior else set()))

    def encode(self, x):
        out = self.pm.encoder(x)
        if self.code == "gaussian":
            return out.embedding, out.log_covariance
        z = out.embedding
        return z.squeeze(2).transpose(1, 2).reshape(len(z), -1) if self.code == "vq" else z  # "point": z

    def decode(self, z):
        return self.pm.decoder(z)["reconstruction"]

    def embed(self, x):
        e = self.encode(x)
        return e[0] if self.code == "gaussian" else e

    def forward(self, x):
        if self.code == "gaussian":  # decode the mean, as aelab's VAE does in eval mode
            z = self.embed(x)
            return {"x_hat": self.decode(z), "z": z}
        from pythae.data.datasets import DatasetOutput
        out = self.pm(DatasetOutput(data=x))  # the model's own path (a VQ-VAE quantizes)
        return {"x_hat": out.recon_x, "z": self.embed(x)}

    def prior_params(self):
        """VAMP: the encoder's (mu, logvar) at the K pseudo-inputs (aelab's VampVAE.prior_params)."""
        k = self.pm.number_components
        u = self.pm.pseudo_inputs(torch.eye(k, device=next(self.parameters()).device))
        return self.encode(u.reshape(k, *self.pm.model_config.input_dim))

    def sample(self, n, y=None, generator=None):
        """Decode ``n`` prior draws: N(0, I) (Pythae's NormalSampler), or the VampPrior's."""
        dev = next(self.parameters()).device
        if hasattr(self.pm, "pseudo_inputs"):
            from aelab.models.families.vamp.prior import draw_components
            return self.decode(draw_components(*self.prior_params(), n, generator))
        return self.decode(torch.randn(n, self.latent_dim, generator=generator).to(dev))


# ------------------------------------------------------------ one bound code for both

def bound(name: str, model, x: np.ndarray, loss: str, device, seed: int, k: int | None = None) -> float:
    """The family's bound on ``x`` by aelab's own evaluation code, for an aelab
    model or an :class:`AsAelab` one: ``elbo`` (aelab.evaluation.elbo_metrics,
    analytic KL, one draw per image), ``iwae`` (the k-sample bound,
    aelab.models.families.iwae.bound.split_bound), ``vamp`` (the ELBO with the
    VampPrior, vamp.family.vamp_elbo_metrics).  Draws from a generator seeded ``seed``."""
    if name == "elbo":
        from aelab.evaluation import elbo_metrics
        return elbo_metrics(model, x, loss, device, seed)["elbo"]
    if name == "iwae":
        from aelab.models.families.iwae.bound import split_bound
        return split_bound(model, x, k, elementwise_loss(loss), device, seed)
    if name == "vamp":
        from aelab.models.families.vamp.family import vamp_elbo_metrics
        return vamp_elbo_metrics(model, x, loss, device, seed)["elbo"]
    raise ValueError(f"bound {name!r}")
