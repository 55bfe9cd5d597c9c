"""``method: adversarial``: alternating discriminator and generator steps
(:class:`AdversarialTrainer`).

Determinism is the gradient trainer's: the permutation and the global RNG
(noise ``z``, the gradient penalty's interpolation weights, dropout) of
epoch ``e`` are seeded from ``(train.seed, e)``, and a checkpoint holds both
networks, both optimizers and the generator's moving average, so a run
resumed from the checkpoint of epoch ``e`` replays exactly what an
uninterrupted one does.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ...checkpoint import _join_optimizer, _split_optimizer
from ...gradient import TrainState, epoch_loop, epoch_seed
from ...state_trainer import StateTrainer

FORMAT = "aelab-adversarial-1"


@dataclass(frozen=True)
class Loss:
    """One adversarial loss: the discriminator's (critic's) and the
    generator's terms on the logits, whether the critic gets the gradient
    penalty, and whether D's outputs read as probabilities (sigmoid) for
    the history."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    penalized: bool = False
    probabilities: bool = False


LOSSES = {
    # Goodfellow et al. 2014: -log D(x) - log(1 - D(G(z))) for D, -log D(G(z)) for G (non-saturating)
    "non_saturating": Loss(lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
                           lambda fake: F.softplus(-fake).mean(), probabilities=True),
    # Lim & Ye 2017; Miyato et al. 2018
    "hinge": Loss(lambda real, fake: F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean(),
                  lambda fake: -fake.mean()),
    # Gulrajani et al. 2017, eq. 3: the critic's part; the penalty is added with gp_weight
    "wgan-gp": Loss(lambda real, fake: fake.mean() - real.mean(), lambda fake: -fake.mean(), penalized=True),
}


def discriminator_loss(name: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's (critic's) loss ``name`` on the logits of real and generated images."""
    return LOSSES[name].discriminator(real, fake)


def generator_loss(name: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss ``name`` on the logits of its images."""
    return LOSSES[name].generator(fake)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al. 2017, eq. 3: E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat
    uniformly between a real and a generated image."""
    eps = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


class AdversarialTrainer:
    """Trains a model with ``generator``, ``discriminator``, ``critic(x)``
    and ``latent_dim`` (the ``gan`` family) on ``train.loss``."""

    def __init__(self, model, spec, callbacks=()):
        self.model, self.spec, self.callbacks = model, spec, list(callbacks)
        self.device = next(model.parameters()).device
        self.opt_g = torch.optim.Adam(model.generator.parameters(), lr=spec.lr_g, betas=spec.betas)
        self.opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=spec.lr_d, betas=spec.betas)
        self.ema = [p.detach().clone() for p in model.generator.parameters()] if spec.ema else None
        self.state = TrainState()

    def fit(self, x: torch.Tensor, y, x_val, y_val) -> TrainState:
        return epoch_loop(self, lambda: self._epoch(x))

    def _epoch(self, x: torch.Tensor) -> None:
        e, started, s = self.state.epoch, time.perf_counter(), self.spec
        torch.manual_seed(epoch_seed(s.seed, e))
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch_seed(s.seed, e))).to(x.device)
        self.model.train()
        d_sum = g_sum = real_sum = fake_sum = torch.zeros((), device=self.device)  # summed on the device: no sync
        n_d = n_g = 0
        for i, start in enumerate(range(0, len(x), s.batch_size)):
            real = x[perm[start:start + s.batch_size]]
            d_loss, d_real, d_fake = self._discriminator_step(real)
            d_sum, real_sum, fake_sum, n_d = d_sum + d_loss, real_sum + d_real, fake_sum + d_fake, n_d + 1
            if (i + 1) % s.n_critic == 0:
                g_sum, n_g = g_sum + self._generator_step(len(real)), n_g + 1
        g_loss = float(g_sum) / n_g if n_g else math.nan
        row = {"epoch": e + 1, "train_loss": g_loss, "val_loss": math.nan, "d_loss": float(d_sum) / n_d,
               "g_loss": g_loss, "d_real": float(real_sum) / n_d, "d_fake": float(fake_sum) / n_d,
               "seconds": time.perf_counter() - started}
        self.state.history.append(row)
        self.state.epoch = e + 1
        if not math.isfinite(row["d_loss"]) or (n_g and not math.isfinite(g_loss)) or not self._finite():
            self.state.status = "diverged"  # a NaN/inf loss or state: stop cleanly, epoch recorded

    def _finite(self) -> bool:
        """Whether the weights and both optimizers' moments are finite (one
        host sync per epoch): a huge gradient can overflow Adam's second
        moment while every loss stays finite."""
        tensors = [p for p in self.model.parameters()]
        for opt in (self.opt_g, self.opt_d):
            tensors += [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v) and v.dim()]
        return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())

    def _discriminator_step(self, real: torch.Tensor):
        loss_fn = LOSSES[self.spec.loss]
        with torch.no_grad():
            fake = self.model.decode(torch.randn(len(real), self.model.latent_dim, device=self.device))
        real_logit, fake_logit = self.model.critic(real), self.model.critic(fake)
        loss = loss_fn.discriminator(real_logit, fake_logit)
        if loss_fn.penalized and self.spec.gp_weight:
            loss = loss + self.spec.gp_weight * gradient_penalty(self.model.critic, real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        shown = (torch.sigmoid(real_logit), torch.sigmoid(fake_logit)) if loss_fn.probabilities \
            else (real_logit, fake_logit)  # D(x) as a probability, or the critic's raw score
        return loss.detach(), shown[0].detach().mean(), shown[1].detach().mean()

    def _generator_step(self, n: int) -> torch.Tensor:
        fake = self.model.decode(torch.randn(n, self.model.latent_dim, device=self.device))
        loss = LOSSES[self.spec.loss].generator(self.model.critic(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.ema is not None:
            with torch.no_grad():
                for avg, p in zip(self.ema, self.model.generator.parameters()):
                    avg.mul_(self.spec.ema).add_(p.detach(), alpha=1 - self.spec.ema)
        return loss.detach()

    def _finish(self) -> None:
        if self.ema is not None:  # the moving average becomes the generator
            with torch.no_grad():
                for avg, p in zip(self.ema, self.model.generator.parameters()):
                    p.copy_(avg)
        self.state.status = "completed"

    # ------------------------------------------------------- checkpoints
    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        g_tensors, g_meta = _split_optimizer(self.opt_g.state_dict(), "optim_g.")
        d_tensors, d_meta = _split_optimizer(self.opt_d.state_dict(), "optim_d.")
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()} | g_tensors | d_tensors
        tensors |= {f"ema.{i}": v for i, v in enumerate(self.ema or [])}
        s = self.state
        meta = {"format": FORMAT, "epoch": s.epoch, "history": s.history, "status": s.status,
                "optimizer_g": g_meta, "optimizer_d": d_meta}
        return tensors, meta

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        if meta.get("format") != FORMAT:
            raise ValueError(f"not an adversarial checkpoint (format {meta.get('format')!r})")
        tensors = {k: v.to(self.device) for k, v in tensors.items()}
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.opt_g.load_state_dict(_join_optimizer(meta["optimizer_g"], tensors))
        self.opt_d.load_state_dict(_join_optimizer(meta["optimizer_d"], tensors))
        if self.ema is not None:
            self.ema = [tensors[f"ema.{i}"] for i in range(len(self.ema))]
        self.state = TrainState(epoch=meta["epoch"], history=meta["history"], status=meta["status"])


class Adversarial(StateTrainer):
    method = "adversarial"
    description = "alternating discriminator and generator steps (non-saturating, hinge or WGAN-GP loss)"

    def make(self, model, cfg, callbacks):
        return AdversarialTrainer(model, cfg.train, callbacks)

    def copies(self, spec):
        return 5 + (1 if spec.ema else 0)  # weights, gradients, two Adam moments, a sample batch; the EMA

    def figures(self, folder, model, data, history, device, stages=None):
        from ....plots import save_curves
        return [save_curves(history, ["d_loss", "g_loss"], folder / "loss_curves.png", ylabel="loss",
                            title="Discriminator and generator loss per epoch"),
                save_curves(history, ["d_real", "d_fake"], folder / "discriminator.png", ylabel="D",
                            title="The discriminator on real and generated images")]


TRAINER = Adversarial()
