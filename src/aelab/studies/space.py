"""The search space: dotted config fields and the values they may take.

A categorical value may be anything a config accepts (a list of layers, a
dict); Optuna stores only primitives, so such values travel through Optuna
as their canonical JSON text and are decoded on the way back.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import optuna

from ..errors import ConfigError
from ..spec import Config, load_config, set_values
from .spec import ChoiceSpec, RangeSpec


def _is_primitive(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def encode(v: Any) -> Any:
    """A value as Optuna can store it (primitives as is, the rest as JSON)."""
    return v if _is_primitive(v) else json.dumps(v, sort_keys=True)


@dataclass(frozen=True)
class Param:
    """One searched field: ``key`` is the dotted config path."""

    key: str
    domain: str  # what values it takes: categorical | int | float (a field's, not a model's kind)
    choices: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    labels: tuple = ()  # a categorical's names for its choices, shown instead of the values

    def shown(self, value: Any) -> Any:
        """``value`` as results and figures show it: its label, if it has one."""
        if self.labels:
            for c, label in zip(self.choices, self.labels):
                if encode(c) == encode(value):
                    return label
        return value

    @property
    def shown_choices(self) -> list:
        return list(self.labels or self.choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw (or read back an enqueued) value for this field."""
        if self.domain == "categorical":
            return self.decode(trial.suggest_categorical(self.key, [encode(c) for c in self.choices]))
        if self.domain == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def decode(self, stored: Any) -> Any:
        """The config value behind what Optuna stored."""
        if self.domain != "categorical":
            return stored
        for c in self.choices:
            if encode(c) == stored:
                return c
        raise ConfigError(f"space.{self.key}: stored value {stored!r} is not one of the choices")

    def grid(self) -> list[Any]:
        """Every value a grid search visits."""
        if self.domain == "categorical":
            return list(self.choices)
        if self.domain == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if not self.step:
            raise ConfigError(f"space.{self.key}: a grid over a float range needs 'step'")
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [self.low + i * self.step for i in range(n)]

    def probes(self) -> list[Any]:
        """Values checked against the config schema before a study starts."""
        return list(self.choices) if self.domain == "categorical" else [self._num(self.low), self._num(self.high)]

    def _num(self, v: float):
        return int(v) if self.domain == "int" else float(v)


def parse_space(space: dict) -> list[Param]:
    params = []
    for key, spec in space.items():
        if isinstance(spec, list):
            spec = ChoiceSpec(values=spec)
        if isinstance(spec, ChoiceSpec):
            if not spec.values:
                raise ConfigError(f"space.{key}: needs at least one value")
            params.append(Param(key, "categorical", tuple(spec.values), labels=tuple(spec.labels or ())))
        else:
            params.append(_range_param(key, spec))
    return params


def _range_param(key: str, r: RangeSpec) -> Param:
    is_int = r.type == "int" or (r.type is None and float(r.low).is_integer() and float(r.high).is_integer()
                                 and not r.log and (r.step is None or float(r.step).is_integer()))
    return Param(key, "int" if is_int else "float", low=r.low, high=r.high, log=r.log, step=r.step)


def fields(key: str, value: Any) -> dict[str, Any]:
    """Config fields set by one space entry.  A key joining several fields
    with commas varies them together: ``"model.output_activation,train.loss":
    [[sigmoid, bce], [linear, mse]]``."""
    names = [k.strip() for k in key.split(",")]
    if len(names) == 1:
        return {key: value}
    if not isinstance(value, (list, tuple)) or len(value) != len(names):
        raise ConfigError(f"space.{key}: each value must list {len(names)} items, one per field; got {value!r}")
    return dict(zip(names, value))


def check_space(params: list[Param], base: dict, label: str) -> None:
    """Every probe value of every field must give a valid config: an unknown
    field or an impossible value fails here, before any trial runs."""
    for p in params:
        for value in p.probes():
            try:
                load_config(set_values(base, fields(p.key, value), "space", lenient=True))
            except ConfigError as e:
                raise ConfigError(f"{label}: space.{p.key}: {str(e).split(': ', 1)[-1]}") from None


def config_for(base: dict, params: list[Param], values: dict[str, Any]) -> Config:
    """The validated config for one point of the space."""
    chosen: dict[str, Any] = {}
    for p in params:
        chosen |= fields(p.key, values[p.key])
    return load_config(set_values(base, chosen, "space", lenient=True))


def grid_points(params: list[Param]) -> list[dict[str, Any]]:
    """The Cartesian product of every field's grid values, in file order."""
    keys = [p.key for p in params]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(p.grid() for p in params))]


def label_of(values: dict[str, Any], params: list[Param] = ()) -> str:
    """A short human label for one configuration, e.g. ``optimizer=sgd, lr=0.01``;
    a choice with a label is shown as the label alone (``wae``)."""
    named = {p.key: p for p in params if p.labels}
    shown = {k: named[k].shown(v) if k in named else v for k, v in values.items()}

    def short(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            return "+".join(v)
        return json.dumps(v, separators=(",", ":")) if not isinstance(v, str) else v
    return ", ".join(shown[k] if k in named else f"{short_key(k)}={short(v)}" for k, v in values.items())


def short_key(key: str) -> str:
    """``model.output_activation,train.loss`` -> ``output_activation,loss``."""
    return ",".join(k.strip().split(".")[-1] for k in key.split(","))
