"""Samplers: where the codes come from that a decoder turns into samples.

Every sampler yields latent codes ``z`` (n, latent_dim); the images are
``model.decode(z)`` (with the class, for a conditional model).  Which
codes depends on the sampler:

* ``prior``: the model's own prior, for every family that declares
  ``generative`` (its ``sample(n)`` draws the same codes): N(0, s^2 I), or
  what the model's ``prior_codes(n, generator)`` draws where it has a prior
  of its own (the VampPrior of ``kind: vamp``);
* ``gaussian``: a full-covariance Gaussian fitted to the training set's
  codes (``embed``: ``mu`` for a VAE) -- an autoencoder has no prior, this
  is the nearest thing to one;
* ``gmm``: a Gaussian mixture fitted to the same codes (scikit-learn's
  ``GaussianMixture``, as Pythae's GMM sampler);
* ``expost``: the ex-post density estimate of Ghosh et al. (2020, Sec. 4.1),
  a 10-component full-covariance mixture fitted to the same codes with the
  authors' EM settings -- the regularized autoencoder's (``kind: rae``)
  sampler, and its default.

Without ``--sampler`` a run is sampled by its family's ``default_sampler``
where the family names one, else by ``prior`` or ``gaussian``, whichever
it can use first.

A sampler is a plug-in found by :class:`aelab.plugins.Registry`: a folder
``samplers/<name>/`` with a light ``config.py`` (``SPEC``: a
:class:`SamplerSpec` whose ``sampler`` field names it and whose other fields
are its options, validated without torch) and ``sampler.py`` (``SAMPLER``:
a :class:`Sampler`), or a module in the entry-point group
``aelab.samplers`` defining both.  A sampler declares the capabilities the
model needs (``needs``) and whether it is fitted to the training codes
(``fits_codes``); ``aelab sample`` (:mod:`.run`) checks both before any
work and names the samplers the model can use instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from ..errors import AelabError
from ..plugins import Registry

if TYPE_CHECKING:  # torch and numpy are the implementations' business
    import numpy as np
    import torch


class SamplerError(AelabError):
    """A sampling request (sampler, option, run) that cannot be served."""


class SamplerSpec(BaseModel):
    """A sampler's options (subclasses add ``sampler: Literal[name]`` and
    their own fields); unknown options are refused."""

    model_config = ConfigDict(extra="forbid")


class Density(Protocol):
    """A fitted sampler: draws ``(n, dim)`` float32 codes from a generator."""

    dim: int

    def draw(self, n: int, generator: "torch.Generator") -> "torch.Tensor": ...

    def facts(self) -> dict:
        """What ``sampler.json`` records about the fit (shapes, weights, ...)."""
        ...


@dataclass
class Fitted:
    """A :class:`Density` made of a distribution with ``dim`` and
    ``sample(n, generator)`` (:mod:`aelab.densities`) and what ``sampler.json``
    says of it (``dim`` is added)."""

    distribution: Any
    about: dict

    @property
    def dim(self) -> int:
        return self.distribution.dim

    def draw(self, n: int, generator: "torch.Generator") -> "torch.Tensor":
        return self.distribution.sample(n, generator)

    def facts(self) -> dict:
        return {**self.about, "dim": self.dim}


class Sampler:
    """What a sampler declares; subclasses implement :meth:`fit`."""

    name: str = ""
    description: str = ""                  # one line
    needs: frozenset[str] = frozenset()    # capabilities the model must declare
    fits_codes: bool = False               # fit() is given the training codes (needs ``embed``)

    def fit(self, spec: SamplerSpec, model: "torch.nn.Module", codes: "np.ndarray | None",
            seed: int) -> Density:
        """The density codes are drawn from, for ``model`` (eval mode) and,
        when :attr:`fits_codes`, the training set's codes (N, latent_dim)."""
        raise NotImplementedError


REGISTRY = Registry(__name__, Path(__file__).parent, "sampler", "aelab.samplers", "sampler", "SAMPLER",
                    what="--sampler")


def names() -> list[str]:
    """Every registered sampler, sorted."""
    return REGISTRY.keys()


def spec_class(name: str) -> type[SamplerSpec]:
    """The options of sampler ``name`` (light); one line naming the known ones if unknown."""
    if name not in REGISTRY.modules:
        raise SamplerError(f"--sampler {name}: unknown sampler (known: {', '.join(names())})")
    return REGISTRY.specs()[name]


def sampler(name: str) -> Sampler:
    """The sampler registered as ``name`` (imports its implementation)."""
    return REGISTRY.implementation(name)
