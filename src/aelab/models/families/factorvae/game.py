"""FactorVAE's game (Kim & Mnih 2018, "Disentangling by Factorising",
eq. 2 and Algorithm 2).

The VAE minimizes its negative ELBO plus gamma times the total correlation
TC(z) = KL(q(z) || q_bar(z)), q_bar(z) = prod_j q(z_j), estimated with the
density-ratio trick: a discriminator D(z) (the probability that z came
from q(z) rather than q_bar(z)) gives

    TC(z) ~= E_q(z)[log D(z) / (1 - D(z))] = E_q(z)[logit D(z)]

D is trained to tell codes of q(z) from codes of q_bar(z), which are codes
of another batch with every dimension shuffled across it
(:func:`permute_dims`, Algorithm 1).  As Algorithm 2 draws two minibatches
per iteration, each batch is split in halves (as Pythae does): the first
half trains the VAE and is the discriminator's q(z) sample, the second,
permuted, its q_bar(z) sample.  In Algorithm 2's order: the VAE steps
first, encoding the whole batch once; then the discriminator steps on those
codes (detached, from before the VAE's update), so a step costs one encoder
pass, not two.

The estimate reads D's logit as log D/(1 - D), which holds only for D
trained with the cross-entropy (``train.loss: non_saturating``); another
loss is refused in one line.
"""
from __future__ import annotations

import torch

from ....errors import ConfigError
from ....training.methods.adversarial.games import Game, without
from ....training.objectives import summed_loss
from ...autoencoder import kld


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Algorithm 1: each dimension of ``z`` (B, d) shuffled across the batch
    on its own (torch's global RNG, which the trainer seeds per epoch)."""
    idx = torch.stack([torch.randperm(len(z), device=z.device) for _ in range(z.shape[1])], dim=1)
    return torch.gather(z, 0, idx)


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's two halves (a batch of one is both)."""
    if len(x) < 2:
        return x, x
    h = len(x) // 2
    return x[:h], x[h:]


class FactorGame(Game):
    generator_first = True  # Algorithm 2: the VAE's update, then D's on the same codes

    def __init__(self, train, reconstruction: str, gamma: float):
        if train.loss != "non_saturating":
            raise ConfigError(f"train.loss: FactorVAE's total-correlation estimate reads the discriminator's logit "
                              f"as log D/(1-D), which needs the cross-entropy: expected non_saturating "
                              f"(got {train.loss})")
        super().__init__(train)
        self.recon, self.gamma = summed_loss(reconstruction), gamma
        self.codes: tuple[torch.Tensor, torch.Tensor] | None = None  # the last VAE step's, for D's step

    def generator_parameters(self, model):
        return without(model, "discriminator")

    def generator_backward(self, model, real, cond):
        first, second = halves(real)
        mu, logvar = model.encode(torch.cat([first, second]) if second is not first else first)
        z = model.reparameterize(mu, logvar)
        h = len(first)
        z_q, mu_q, logvar_q = z[:h], mu[:h], logvar[:h]
        recon, kl = self.recon(model.decode(z_q), first), kld(mu_q, logvar_q).mean()
        tc = model.critic(z_q).mean()
        loss = recon + kl + self.gamma * tc
        loss.backward()
        self.codes = (z_q.detach(), (z[h:] if len(z) > h else z_q).detach())
        return loss.detach(), {"recon": recon.detach(), "kl": kl.detach(), "tc": tc.detach()}

    def discriminator_backward(self, model, real, cond):
        if self.codes is None:  # a discriminator step without a VAE step before it (n_critic > 1)
            first, second = halves(real)
            with torch.no_grad():
                self.codes = (model.reparameterize(*model.encode(first)),
                              model.reparameterize(*model.encode(second)))
        z_q, z_other = self.codes
        self.codes = None
        q_logit, bar_logit = model.critic(z_q), model.critic(permute_dims(z_other))
        loss = self.loss.discriminator(q_logit, bar_logit)  # cross-entropy: q(z) is class 1
        return self.critic_backward(loss, q_logit, bar_logit)
