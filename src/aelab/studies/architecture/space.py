"""The architecture space of an evolution study and the genome it searches.

An :class:`Architecture` is the genome: conv block filters, dense layer
widths, activation, latent size and model kind.  Its canonical form (a
sorted JSON text) is its identity, so an architecture reached twice, by any
route, is recognised and never trained twice.  It turns into config fields
(``model.encoder`` and friends) that override the study's base config.

The :class:`ArchitectureSpec` (the study file's ``architecture:`` block)
declares what may vary.  Fields left out are fixed to the base config's
value, so the VAE article's space is just ``layers``, ``units`` and
``first_layer: input``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...errors import AelabError, ConfigError
from ...models import build_model
from ...models.family import spec_classes
from ...spec import Config, load_config, set_values
from ...spec_base import AutoencoderSpecBase

def genome_kinds() -> list[str]:
    """The model kinds an architecture genome can hold (and a mutation
    switch between): every family whose spec is an encoder, a latent code
    and a decoder (``spec_base.AutoencoderSpecBase``) -- asked of the specs,
    not named here."""
    return [k for k, cls in spec_classes().items() if issubclass(cls, AutoencoderSpecBase)]

CONV_KERNEL = 3  # conv blocks: 3x3, stride 2, 'same' padding (halves height and width)


class IntRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: int = Field(ge=0)
    high: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.low > self.high:
            raise ValueError(f"needs low <= high, got low={self.low}, high={self.high}")
        return self


class ArchitectureSpec(BaseModel):
    """What an architecture study may change, and the evolution settings."""

    model_config = ConfigDict(extra="forbid")
    population: int = Field(default=8, ge=2, description="individuals (article-rule) / population size P (aging)")
    layers: IntRange = Field(default_factory=lambda: IntRange(low=1, high=6), description="dense layers")
    units: IntRange = Field(default_factory=lambda: IntRange(low=8, high=512), description="dense widths")
    first_layer: Literal["free", "input"] = Field(
        default="free", description="input: the first dense layer has the input's size (the VAE article)")
    conv_layers: IntRange = Field(default_factory=lambda: IntRange(low=0, high=0), description="conv blocks")
    filters: IntRange = Field(default_factory=lambda: IntRange(low=4, high=64), description="conv filters")
    activations: list[str] | None = Field(default=None, description="choices; default: the base's")
    latent_dims: list[int] | None = Field(default=None, description="choices; default: the base's")
    kinds: list[str] | None = Field(default=None, description="choices; default: the base's")
    tournament: int = Field(default=3, ge=2, description="aging evolution: sample size S")
    shrink_above: int = Field(default=4, ge=1, description="article rule: remove a layer above this many")

    @model_validator(mode="after")
    def _check(self) -> "ArchitectureSpec":
        if self.units.low < 1 or self.filters.low < 1:
            raise ValueError("units and filters need low >= 1")
        if self.layers.high + self.conv_layers.high < 1:
            raise ValueError("layers and conv_layers admit no layer at all (both high are 0)")
        wrong = [k for k in self.kinds or [] if k not in genome_kinds()]
        if wrong:
            raise ValueError(f"kinds: {wrong[0]!r} is not a kind the genome holds (it holds "
                             f"{', '.join(genome_kinds())})")
        for name in ("activations", "latent_dims", "kinds"):
            if getattr(self, name) is not None and not getattr(self, name):
                raise ValueError(f"{name}: needs at least one choice")
        if any(d < 1 for d in self.latent_dims or []):
            raise ValueError("latent_dims must be positive")
        return self


@dataclass(frozen=True)
class Architecture:
    """One genome.  ``dense[0]`` is the input's size when the space says so."""

    kind: str
    conv: tuple[int, ...]
    dense: tuple[int, ...]
    activation: str
    latent_dim: int

    @property
    def layers(self) -> int:
        return len(self.conv) + len(self.dense)

    def canonical(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["conv"], d["dense"] = list(self.conv), list(self.dense)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Architecture":
        return cls(kind=d["kind"], conv=tuple(d["conv"]), dense=tuple(d["dense"]),
                   activation=d["activation"], latent_dim=int(d["latent_dim"]))

    def label(self) -> str:
        """``vae conv[16,32] dense[784,128] relu z=2`` -- short, unique."""
        parts = [self.kind]
        if self.conv:
            parts.append("conv[" + ",".join(map(str, self.conv)) + "]")
        parts += ["dense[" + ",".join(map(str, self.dense)) + "]", self.activation, f"z={self.latent_dim}"]
        return " ".join(parts)

    def fields(self) -> dict[str, Any]:
        """The config fields this genome sets."""
        encoder: list[Any] = [{"type": "conv2d", "filters": f, "kernel": CONV_KERNEL, "stride": 2,
                               "padding": "same"} for f in self.conv]
        return {"model.kind": self.kind, "model.encoder": encoder + list(self.dense),
                "model.decoder": "mirror", "model.activation": self.activation,
                "model.latent_dim": self.latent_dim}

    def with_(self, **changes: Any) -> "Architecture":
        return replace(self, **changes)


@dataclass(frozen=True)
class Space:
    """An ArchitectureSpec resolved against a base config and an input shape."""

    spec: ArchitectureSpec
    base: dict
    input_shape: tuple[int, int, int]
    activations: tuple[str, ...]
    latent_dims: tuple[int, ...]
    kinds: tuple[str, ...]

    @classmethod
    def resolve(cls, spec: ArchitectureSpec, base: dict, input_shape: tuple[int, int, int]) -> "Space":
        model = load_config(base).model
        return cls(spec, base, tuple(input_shape), tuple(spec.activations or [model.activation]),
                   tuple(spec.latent_dims or [model.latent_dim]), tuple(spec.kinds or [model.kind]))

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    def config(self, arch: Architecture) -> Config:
        raw = set_values(self.base, arch.fields(), "architecture")
        fields = spec_classes()[arch.kind].model_fields  # a switch of kind leaves the other family's fields
        raw["model"] = {k: v for k, v in raw["model"].items() if k in fields}
        return load_config(raw)

    def contains(self, arch: Architecture) -> str | None:
        """Why ``arch`` lies outside the space, or None when it lies inside."""
        s = self.spec
        if not s.layers.low <= len(arch.dense) <= s.layers.high:
            return f"{len(arch.dense)} dense layers, outside [{s.layers.low}, {s.layers.high}]"
        if not s.conv_layers.low <= len(arch.conv) <= s.conv_layers.high:
            return f"{len(arch.conv)} conv blocks, outside [{s.conv_layers.low}, {s.conv_layers.high}]"
        free = arch.dense[1:] if self.fixed_first else arch.dense
        if self.fixed_first and (not arch.dense or arch.dense[0] != self.input_size):
            return f"the first dense layer must have the input's size {self.input_size}"
        if any(not s.units.low <= u <= s.units.high for u in free):
            return f"a dense width outside [{s.units.low}, {s.units.high}]"
        if any(not s.filters.low <= f <= s.filters.high for f in arch.conv):
            return f"a filter count outside [{s.filters.low}, {s.filters.high}]"
        if arch.activation not in self.activations or arch.latent_dim not in self.latent_dims \
                or arch.kind not in self.kinds:
            return "activation, latent size or kind not among the choices"
        return None

    @property
    def fixed_first(self) -> bool:
        return self.spec.first_layer == "input"

    def infeasible(self, arch: Architecture) -> str | None:
        """Why ``arch`` cannot be a network of this space, or None.  The model is
        built on the meta device: shapes are checked, nothing is allocated."""
        reason = self.contains(arch)
        if reason:
            return reason
        try:
            cfg = self.config(arch)
            with torch.device("meta"):
                build_model(cfg.model, self.input_shape)
        except AelabError as e:
            return str(e)
        except (RuntimeError, ValueError) as e:
            return f"{type(e).__name__}: {e}"
        return None

    def dense_range(self, n_conv: int) -> tuple[int, int]:
        """How many dense layers a genome with ``n_conv`` conv blocks may have:
        at least one layer in all, and the input-sized one when fixed."""
        low = max(self.spec.layers.low, 1 if n_conv == 0 else 0, 1 if self.fixed_first else 0)
        return low, max(low, self.spec.layers.high)

    def random(self, rng: np.random.Generator) -> Architecture:
        """A random genome: depth uniform in range, widths log-uniform, sorted
        widest first (an encoder narrows towards the bottleneck)."""
        s = self.spec
        n_conv = int(rng.integers(s.conv_layers.low, s.conv_layers.high + 1))
        low, high = self.dense_range(n_conv)
        n_dense = int(rng.integers(low, high + 1))
        free = n_dense - 1 if self.fixed_first else n_dense
        dense = sorted((log_uniform(rng, s.units.low, s.units.high) for _ in range(free)), reverse=True)
        if self.fixed_first:
            dense = [self.input_size, *dense]
        conv = sorted(log_uniform(rng, s.filters.low, s.filters.high) for _ in range(n_conv))
        return Architecture(kind=str(rng.choice(self.kinds)), conv=tuple(conv), dense=tuple(dense),
                            activation=str(rng.choice(self.activations)),
                            latent_dim=int(rng.choice(self.latent_dims)))

    def random_feasible(self, rng: np.random.Generator, tries: int = 50) -> Architecture:
        reason = ""
        for _ in range(tries):
            arch = self.random(rng)
            reason = self.infeasible(arch)
            if reason is None:
                return arch
        raise ConfigError(f"architecture: no network in this space could be built in {tries} random "
                          f"draws (last: {reason})")


def log_uniform(rng: np.random.Generator, low: int, high: int) -> int:
    return int(round(float(np.exp(rng.uniform(np.log(low), np.log(high))))))
