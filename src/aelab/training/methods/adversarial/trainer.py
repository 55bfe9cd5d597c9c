"""``method: adversarial``: alternating discriminator and generator steps
(:class:`AdversarialTrainer`).

Determinism is the gradient trainer's: the permutation and the global RNG
(noise ``z``, the gradient penalty's interpolation weights, dropout) of
epoch ``e`` are seeded from ``(train.seed, e)``, and a checkpoint holds both
networks, both optimizers, the generator's moving average and the samples
strip, so a run resumed from the checkpoint of epoch ``e`` replays exactly
what an uninterrupted one does.  A conditional family (``cgan``) gets each
real image's label beside it, and its generated images are drawn as the
same labels (the data's class balance).

Mode collapse is watched on a fixed batch of codes (its own generator, so
the training RNG is untouched): :class:`Monitor`.
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch

from ....models.family import conditioned
from ....yardsticks import mean_pairwise_distance
from ...checkpoint import _join_optimizer, _split_optimizer
from ...gradient import TrainState, epoch_loop, epoch_seed, rows
from ...lazy_dynamo import step as optimizer_step
from ...state_trainer import StateTrainer
from .games import Game, ImageGame
from .losses import LOSSES, discriminator_loss, generator_loss, gradient_penalty  # noqa: F401 -- the public names

FORMAT = "aelab-adversarial-1"


# history.csv's columns for every game; a game's own parts come on top
ADVERSARIAL_COLUMNS = ("epoch", "train_loss", "val_loss", "d_loss", "g_loss", "d_real", "d_fake", "diversity",
                       "seconds")
MONITOR = 256  # fixed codes whose samples measure diversity
STRIP = 10     # of them, the samples kept for the strip


class Monitor:
    """The generator's samples of one fixed batch of codes (and, for a
    conditional model, labels 0, 1, ..., K-1 in turn): their mean pairwise
    L2 distance over that of ``MONITOR`` real training images is the
    epoch's diversity (1: as varied as the data; near 0: one image)."""

    def __init__(self, model, x: torch.Tensor, seed: int):
        gen = torch.Generator().manual_seed(seed + 7_777)
        self.z = torch.randn(MONITOR, model.latent_dim, generator=gen).to(x.device)
        k = getattr(model, "num_classes", 1)
        self.y = (torch.arange(MONITOR) % k).to(x.device)
        pick = torch.randperm(len(x), generator=gen)[:MONITOR].to(x.device)
        self.real = mean_pairwise_distance(x[pick].flatten(1).cpu().numpy())

    @torch.no_grad()
    def samples(self, model) -> torch.Tensor:
        was = model.training
        model.eval()
        out = model.decode(self.z, *conditioned(model, self.y))
        model.train(was)
        return out

    def diversity(self, samples: torch.Tensor) -> float:
        fake = mean_pairwise_distance(samples.flatten(1).cpu().numpy())
        return fake / self.real if self.real > 0 else math.nan


class AdversarialTrainer:
    """Trains a model on the :class:`~.games.Game` its family plays (by
    default the GAN's, :class:`~.games.ImageGame`: a model with
    ``generator``, ``discriminator``, ``critic(x[, y])`` and ``latent_dim``)
    with ``train.loss``; every such model decodes ``latent_dim`` prior codes,
    which the mode-collapse watch draws."""

    def __init__(self, model, spec, callbacks=(), game: Game | None = None):
        self.model, self.spec, self.callbacks = model, spec, list(callbacks)
        self.game = game or ImageGame(spec)
        self.device = next(model.parameters()).device
        self.generator_params = self.game.generator_parameters(model)
        self.opt_g = torch.optim.Adam(self.generator_params, lr=spec.lr_g, betas=spec.betas)
        self.opt_d = torch.optim.Adam(self.game.discriminator_parameters(model), lr=spec.lr_d,
                                      betas=spec.betas_d or spec.betas)
        self.ema = [p.detach().clone() for p in self.generator_params] if spec.ema else None
        self.state = TrainState()

    def fit(self, x: torch.Tensor, y, x_val, y_val) -> TrainState:
        self.monitor = Monitor(self.model, x, self.spec.seed)
        if self.state.epoch == 0 and not self.state.stages:
            self.state.stages.append((0, self.monitor.samples(self.model)[:STRIP].cpu()))
        return epoch_loop(self, lambda: self._epoch(x, y))

    def _epoch(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        e, started, s = self.state.epoch, time.perf_counter(), self.spec
        torch.manual_seed(epoch_seed(s.seed, e))
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch_seed(s.seed, e))).to(x.device)
        self.model.train()
        d_sum = g_sum = real_sum = fake_sum = torch.zeros((), device=self.device)  # summed on the device: no sync
        n_d = n_g = 0
        parts: dict[str, torch.Tensor] = {}
        for i, start in enumerate(range(0, len(x), s.batch_size)):
            idx = perm[start:start + s.batch_size]
            real, cond = rows(x, idx), conditioned(self.model, None if y is None else rows(y, idx))
            generator_now = (i + 1) % s.n_critic == 0
            if generator_now and self.game.generator_first:  # the game's order (FactorVAE: Algorithm 2)
                g_loss, g_parts = self._generator_step(real, cond)
            d_loss, d_real, d_fake = self._discriminator_step(real, cond)
            d_sum, real_sum, fake_sum, n_d = d_sum + d_loss, real_sum + d_real, fake_sum + d_fake, n_d + 1
            if generator_now:
                if not self.game.generator_first:
                    g_loss, g_parts = self._generator_step(real, cond)
                g_sum, n_g = g_sum + g_loss, n_g + 1
                parts = {k: parts.get(k, 0.0) + v for k, v in g_parts.items()}
        g_loss = float(g_sum) / n_g if n_g else math.nan
        samples = self.monitor.samples(self.model)
        row = {"epoch": e + 1, "train_loss": g_loss, "val_loss": math.nan, "d_loss": float(d_sum) / n_d,
               "g_loss": g_loss, "d_real": float(real_sum) / n_d, "d_fake": float(fake_sum) / n_d,
               **{k: float(v) / n_g for k, v in parts.items()},
               "diversity": self.monitor.diversity(samples), "seconds": time.perf_counter() - started}
        self.state.history.append(row)
        self.state.epoch = e + 1
        if (e + 1) % s.snapshot_interval == 0 or e + 1 == s.epochs:
            self.state.stages.append((e + 1, samples[:STRIP].cpu()))
        if not math.isfinite(row["d_loss"]) or (n_g and not math.isfinite(g_loss)) or not self._finite():
            self.state.status = "diverged"  # a NaN/inf loss or state: stop cleanly, epoch recorded
        elif self._collapsed():
            self.state.status = "collapsed"
            best = max(r["diversity"] for r in self.state.history)
            warnings.warn(f"train: the generator collapsed at epoch {e + 1}: its samples' diversity fell from "
                          f"{best:.2f} to below {s.collapse:g} of the real images' for {s.collapse_patience} epochs "
                          f"(now {row['diversity']:.3f}); stopped (train.collapse: 0 turns the check off)")

    def _collapsed(self) -> bool:
        """Mode collapse: the samples once reached ``collapse`` of the real
        images' diversity (a fresh generator's near-constant output does not
        count) and then stayed below it for the last ``collapse_patience`` epochs."""
        s, h = self.spec, self.state.history
        window, before = h[-s.collapse_patience:], h[:-s.collapse_patience]
        return (s.collapse > 0 and len(window) == s.collapse_patience
                and any(r["diversity"] >= s.collapse for r in before)
                and all(r["diversity"] < s.collapse for r in window))

    def _finite(self) -> bool:
        """Whether the weights and both optimizers' moments are finite (one
        host sync per epoch): a huge gradient can overflow Adam's second
        moment while every loss stays finite."""
        tensors = [p for p in self.model.parameters()]
        for opt in (self.opt_g, self.opt_d):
            tensors += [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v) and v.dim()]
        return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())

    def _discriminator_step(self, real: torch.Tensor, cond: tuple):
        self.opt_d.zero_grad(set_to_none=True)
        loss, d_real, d_fake = self.game.discriminator_backward(self.model, real, cond)
        optimizer_step(self.opt_d)
        return loss, d_real, d_fake

    def _generator_step(self, real: torch.Tensor, cond: tuple) -> tuple[torch.Tensor, dict]:
        self.opt_g.zero_grad(set_to_none=True)
        loss, parts = self.game.generator_backward(self.model, real, cond)
        optimizer_step(self.opt_g)
        if self.ema is not None:
            with torch.no_grad():
                for avg, p in zip(self.ema, self.generator_params):
                    avg.mul_(self.spec.ema).add_(p.detach(), alpha=1 - self.spec.ema)
        return loss, parts

    def _finish(self) -> None:
        best = max((r["diversity"] for r in self.state.history), default=math.nan)
        if self.spec.collapse > 0 and best < self.spec.collapse:
            warnings.warn(f"train: the generator's samples never reached {self.spec.collapse:g} of the real images' "
                          f"diversity (best {best:.3f}): they are much alike; train longer or check the networks")
        if self.ema is not None:  # the moving average becomes the generator
            with torch.no_grad():
                for avg, p in zip(self.ema, self.generator_params):
                    p.copy_(avg)
        self.state.status = "completed"

    # ------------------------------------------------------- checkpoints
    def checkpoint(self) -> tuple[dict[str, torch.Tensor], dict]:
        g_tensors, g_meta = _split_optimizer(self.opt_g.state_dict(), "optim_g.")
        d_tensors, d_meta = _split_optimizer(self.opt_d.state_dict(), "optim_d.")
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()} | g_tensors | d_tensors
        tensors |= {f"ema.{i}": v for i, v in enumerate(self.ema or [])}
        s = self.state
        tensors |= {f"stage.{i}": v.contiguous() for i, (_, v) in enumerate(s.stages)}
        meta = {"format": FORMAT, "epoch": s.epoch, "history": s.history, "status": s.status,
                "optimizer_g": g_meta, "optimizer_d": d_meta, "stages": [e for e, _ in s.stages]}
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
        stages = [(e, tensors[f"stage.{i}"].cpu()) for i, e in enumerate(meta.get("stages", []))]
        self.state = TrainState(epoch=meta["epoch"], history=meta["history"], status=meta["status"], stages=stages)


class Adversarial(StateTrainer):
    method = "adversarial"
    description = "alternating discriminator and generator steps (non-saturating, hinge or WGAN-GP loss)"

    def check(self, cfg) -> None:
        """Also refuse, in one line, a loss the family's game cannot play
        (FactorVAE's density-ratio trick needs the non-saturating loss)."""
        super().check(cfg)
        self.game(cfg)

    @staticmethod
    def game(cfg) -> Game:
        from ....models.family import family
        return family(cfg.model.kind).game(cfg.model, cfg.train)

    def make(self, model, cfg, callbacks):
        return AdversarialTrainer(model, cfg.train, callbacks, self.game(cfg))

    def copies(self, spec):
        return 5 + (1 if spec.ema else 0)  # weights, gradients, two Adam moments, a sample batch; the EMA

    def figures(self, folder, model, data, history, device, stages=None):
        from ....plots import save_curves, save_reconstruction_rows
        paths = [save_curves(history, ["d_loss", "g_loss"], folder / "loss_curves.png", ylabel="loss",
                             title="Discriminator and generator loss per epoch"),
                 save_curves(history, ["d_real", "d_fake"], folder / "discriminator.png", ylabel="D",
                             title="The discriminator on real and generated images")]
        parts = [k for k in history[0] if k not in ADVERSARIAL_COLUMNS] if history else []
        if parts:  # the named parts of an autoencoder's loss (reconstruction, KL, ...)
            paths.append(save_curves(history, parts, folder / "loss_parts.png", ylabel="loss",
                                     title="The parts of the autoencoder's loss per epoch"))
        if any("diversity" in r for r in history):
            paths.append(save_curves(history, ["diversity"], folder / "diversity.png", ylabel="share of real",
                                     title="Diversity of a fixed batch of samples (mode collapse watch)"))
        if stages:
            keep = np.unique(np.linspace(0, len(stages) - 1, min(len(stages), 16)).round().astype(int))
            rows = [(f"epoch {stages[i][0]}", stages[i][1].numpy()) for i in keep]
            paths.append(save_reconstruction_rows(rows, folder / "stages.png",
                                                  title="Samples of fixed codes over the epochs"))
        return paths


TRAINER = Adversarial()
