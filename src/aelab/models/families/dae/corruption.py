"""The corruption process q_D(x~|x) of a denoising autoencoder.

Vincent, Larochelle, Bengio & Manzagol 2008 ("Extracting and Composing
Robust Features with Denoising Autoencoders", §2.3) corrupt each example by
choosing "a fixed number nu*d of components of x at random" and forcing them
to 0; Vincent et al. 2010 (JMLR 11, "Stacked Denoising Autoencoders",
"Types of corruption considered") add two more processes.  All three here:

- ``gaussian`` (GS): x~ = x + N(0, sigma^2 I), sigma = ``level``;
- ``masking`` (MN): ``round(level * d)`` of each example's d inputs, chosen
  at random, set to 0;
- ``salt_pepper`` (SP): as many inputs chosen the same way, each set to the
  data's minimum or maximum by a fair coin flip.

Every draw comes from ``generator`` when one is given (a fixed-seed
evaluation) and from torch's global RNG otherwise: the gradient trainer
seeds that from (train.seed, epoch) every epoch, so a run resumed after
SIGKILL draws the very noise the uninterrupted run drew.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def corrupt(x: Tensor, noise: str, level: float, generator: torch.Generator | None = None,
            low: float | None = None, high: float | None = None) -> Tensor:
    """x~ ~ q_D(x~|x) for a batch ``x`` (B, ...) of the noise ``noise``.
    ``low``/``high`` are the data's range for salt-and-pepper (default: the
    batch's own minimum and maximum, 0 and 1 for unit-scaled images)."""
    if noise == "gaussian":
        return x + level * _normal(x, generator)
    chosen = choose(x, level, generator)
    if noise == "masking":
        return x.masked_fill(chosen, 0.0)
    if noise == "salt_pepper":
        low = x.amin() if low is None else low     # 0-d tensors: no device sync per batch
        high = x.amax() if high is None else high
        salt = _uniform(x, generator) < 0.5        # the fair coin: max (salt) or min (pepper)
        return torch.where(chosen, torch.where(salt, high, low).to(x.dtype), x)
    raise ValueError(f"model.noise: expected gaussian, masking or salt_pepper, got {noise!r}")


def choose(x: Tensor, fraction: float, generator: torch.Generator | None = None) -> Tensor:
    """A boolean mask of ``x``'s shape with exactly ``round(fraction * d)``
    entries set in each example (d = the inputs of one example), chosen
    uniformly at random without replacement: the k smallest of d uniform draws."""
    flat = x.reshape(len(x), -1)
    k = round(fraction * flat.shape[1])
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if k:
        idx = _uniform(flat, generator).topk(k, dim=1, largest=False).indices
        mask.scatter_(1, idx, True)
    return mask.reshape(x.shape)


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None:
        return torch.rand_like(x)
    return torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def _normal(x: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
