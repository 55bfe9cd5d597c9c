"""``method: adversarial``: its spec (light: no torch)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ....train_spec import TrainBase


Beta = Annotated[float, Field(ge=0.0, lt=1.0)]  # Adam's decay rates (Kingma & Ba 2015): 0 <= beta < 1


class AdversarialTrain(TrainBase):
    """Alternating discriminator and generator steps on minibatches, each
    network with its own Adam (DCGAN's lr 2e-4 and betas (0.5, 0.999),
    Radford et al. 2016; ``betas_d`` gives the discriminator others, as
    FactorVAE's (0.5, 0.9)).  The family says what the two networks are and
    what each minimizes (its game): the GAN's generator and image
    discriminator, or an autoencoder and a discriminator on its codes or
    its images.  The generator steps once every ``n_critic``
    discriminator steps.  Losses: ``non_saturating`` (Goodfellow et al.
    2014, the generator maximizes log D(G(z))), ``hinge`` (Lim & Ye 2017;
    Miyato et al. 2018) and ``wgan-gp`` (Gulrajani et al. 2017, eq. 3: a
    critic with a gradient penalty of weight ``gp_weight``).  ``ema``: the
    decay of an exponential moving average of the generator's weights, which
    becomes the final generator (None: the last weights).

    After every epoch the generator draws a fixed batch of codes (the same
    every epoch, seeded by ``seed``): their mean pairwise distance over that
    of real training images is the epoch's ``diversity`` in history.csv.
    Once it has reached ``collapse``, falling back below it for
    ``collapse_patience`` epochs in a row stops the run with status
    ``collapsed`` and a one-line warning (mode collapse: the samples lost
    their variety; a fresh generator's near-constant output does not count;
    0 turns the check off).  Every
    ``snapshot_every`` epochs (default: about eight rows over the run) the
    first samples of that batch are kept for the samples-over-epochs strip."""

    method: Literal["adversarial"] = "adversarial"
    loss: Literal["non_saturating", "hinge", "wgan-gp"] = "non_saturating"
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr_g: float = Field(default=2e-4, gt=0.0)
    lr_d: float = Field(default=2e-4, gt=0.0)
    betas: tuple[Beta, Beta] = (0.5, 0.999)
    betas_d: tuple[Beta, Beta] | None = Field(default=None, description="the discriminator's Adam betas (None: betas)")
    n_critic: int = Field(default=1, ge=1, description="discriminator steps per generator step")
    gp_weight: float = Field(default=10.0, ge=0.0, description="wgan-gp: lambda of the gradient penalty")
    ema: float | None = Field(default=None, gt=0.0, lt=1.0, description="decay of the generator's EMA")
    collapse: float = Field(default=0.2, ge=0.0, lt=1.0,
                            description="diversity (share of the real images') that, once reached, the samples must keep")
    collapse_patience: int = Field(default=3, ge=1, description="epochs in a row below `collapse` before stopping")
    snapshot_every: int | None = Field(default=None, ge=1, description="epochs between rows of the samples strip")

    @property
    def snapshot_interval(self) -> int:
        return self.snapshot_every or max(1, -(-self.epochs // 8))

    @property
    def budget(self) -> int:
        return self.epochs

    @property
    def loss_name(self) -> str:
        return "g"

    def summary(self, done: int | None) -> str:
        ema = f", EMA {self.ema:g}" if self.ema else ""
        return (f"adversarial ({self.loss}), Adam lr G {self.lr_g:g} / D {self.lr_d:g}, betas "
                f"{self.betas[0]:g}/{self.betas[1]:g}, n_critic {self.n_critic}{ema}, batch {self.batch_size}, "
                f"{self.progress(done)}, seed {self.seed}")


SPEC = AdversarialTrain
