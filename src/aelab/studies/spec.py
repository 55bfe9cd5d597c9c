"""The study file: a base experiment, a search space, objectives, a strategy.

```yaml
name: optimizers
base: ../configs/digits-ae.yaml     # a config file (relative to this file) or a mapping
set: [train.epochs=50]              # fixed overrides applied to the base
space:                              # any dotted config field
  train.optimizer: [sgd, adam, rmsprop, adagrad]       # categorical
  train.lr: {low: 1.0e-4, high: 1.0e-1, log: true}     # float range
  model.latent_dim: {low: 2, high: 16, step: 2}        # int range
objectives: {recon_mse: min}        # metrics.json keys with a direction
repeats: 3                          # seeds per configuration -> mean ± std
trial_figures: false                # per-run figures (off: the study draws its own)
fuse: true                          # train runs whose models stack as one batched model
                                    # (aelab.fused_runs; --no-fuse turns it off)
strategy: grid                      # grid | random | tpe | nsga2 | article-rule | aging-evolution
trials: null                        # budget (grid: the whole grid)
architecture: null                  # an architecture space instead of (or beside) `space`:
                                    # see aelab.studies.architecture.space.ArchitectureSpec
```
Everything is checked before a study is created, so a bad file writes
nothing to the storage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from ..errors import ConfigError
from ..shipped import resolve
from ..spec import Config, apply_overrides, format_validation_error, load_config, read_mapping, set_values
from .architecture.space import ArchitectureSpec

STRATEGIES = ("grid", "random", "tpe", "nsga2", "article-rule", "aging-evolution")

# Keys of metrics.json a study may optimize: the family's own (its
# ``metric_names``) and the training summary's.
COMMON_METRICS = ("train_loss", "val_loss", "seconds", "parameters", "epochs_trained")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RangeSpec(_Strict):
    """A numeric range; ints when ``low`` and ``high`` are ints and ``log`` is off
    or ``type: int`` says so."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    type: Literal["int", "float"] | None = None

    @model_validator(mode="after")
    def _check(self) -> "RangeSpec":
        if not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class ChoiceSpec(_Strict):
    """Categorical values, optionally with ``labels``: one short name per
    value, shown in place of the value in results.csv, the summary and the
    figures (a value that is a whole section, e.g. a family's model and
    train sections, would otherwise be shown as its JSON)."""

    values: list[Any] = Field(min_length=1)
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _one_label_per_value(self) -> "ChoiceSpec":
        if self.labels is not None:
            if len(self.labels) != len(self.values):
                raise ValueError(f"labels: expected one per value ({len(self.values)}), got {len(self.labels)}")
            if len(set(self.labels)) != len(self.labels) or not all(s.strip() for s in self.labels):
                raise ValueError("labels: expected distinct, non-empty names")
        return self


def _entry_kind(v: Any) -> str:
    """A list of values, a mapping with ``values`` (choices, maybe labelled), or a range."""
    if isinstance(v, (list, tuple)):
        return "list"
    return "choices" if (isinstance(v, dict) and "values" in v) or isinstance(v, ChoiceSpec) else "range"


SpaceEntry = Annotated[Union[Annotated[list[Any], Tag("list")], Annotated[ChoiceSpec, Tag("choices")],
                             Annotated[RangeSpec, Tag("range")]], Discriminator(_entry_kind)]


class StudySpec(_Strict):
    name: str | None = None
    base: Union[str, dict[str, Any]]
    set: list[str] = Field(default_factory=list)
    space: dict[str, SpaceEntry] = Field(default_factory=dict)
    objectives: dict[str, Literal["min", "max"]] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1)
    strategy: Literal[STRATEGIES] = "grid"
    trials: int | None = Field(default=None, ge=1)
    seed: int = 0
    trial_figures: bool = False  # per-run figures; the study draws its own side by side
    fuse: bool = True  # seeds and queued trials whose models stack are trained fused (issue 17)
    architecture: ArchitectureSpec | None = None  # evolve / search architectures (issue: architecture evolution)


def load_study_spec(source: "str | Path | dict") -> tuple[StudySpec, Config, Path]:
    """Validate a study file (or mapping); returns (spec, base config, folder
    that relative paths in it are resolved against).  A bare name is a
    shipped study (``optimizers``)."""
    source = resolve(source, "study")
    label, folder = ("study", Path.cwd()) if isinstance(source, dict) else (str(source), Path(source).parent)
    raw = source if isinstance(source, dict) else read_mapping(source)
    if raw.get("kind") == "lso":
        raise ConfigError(f"{label}: an LSO experiment file (kind: lso), not a study; "
                          f"run it with `aelab lso-study {label}`")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, label)) from None
    base = _base_mapping(spec, folder, label)
    if spec.strategy in ("article-rule", "aging-evolution") and spec.architecture is None:
        raise ConfigError(f"{label}: strategy {spec.strategy} needs an architecture: block")
    if not spec.space and spec.architecture is None:
        raise ConfigError(f"{label}: space: is empty; name at least one config field to vary "
                          f"(or declare an architecture: space)")
    _check_methods(spec, apply_overrides(base, spec.set), label)
    cfg = load_config(set_values(apply_overrides(base, spec.set), {}, lenient=True))
    _check_objectives(spec, cfg, label)
    return spec, cfg, folder


def _methods(spec: StudySpec, base: dict) -> set[str]:
    """The ``train.method`` values the study's trials use."""
    for key, values in spec.space.items():
        names = [k.strip() for k in key.split(",")]
        if "train.method" in names and isinstance(values, list):
            i = names.index("train.method")
            picked = [v if len(names) == 1 else (v[i] if isinstance(v, list) and len(v) > i else None)
                      for v in values]
            return {v for v in picked if isinstance(v, str)}
    from ..spec import TrainSpec
    train = base.get("train")
    return {TrainSpec.key_of(train if isinstance(train, dict) else {})}


def _check_methods(spec: StudySpec, base: dict, label: str) -> None:
    """A study whose trials mix methods sets each ``train`` field only in
    the trials whose method has it; a field that none of them has is one
    line (a typo, or a GA field in a gradient study)."""
    from ..plugins import owners
    from ..training.registry import spec_classes
    specs = spec_classes()
    used = {m for m in _methods(spec, base) if m in specs}
    keys = [item.split("=", 1)[0].strip() for item in spec.set]
    keys += [k.strip() for key in spec.space for k in key.split(",")]
    for key in keys:
        parts = key.split(".")
        if len(parts) == 2 and parts[0] == "train" and parts[1] != "method" and used:
            if not any(parts[1] in specs[m].model_fields for m in used) and owners(specs, parts[1]):
                raise ConfigError(f"{label}: {key}: no trial's method ({', '.join(sorted(used))}) has "
                                  f"{parts[1]} (methods that have it: {', '.join(owners(specs, parts[1]))})")


def _base_mapping(spec: StudySpec, folder: Path, label: str) -> dict:
    if isinstance(spec.base, dict):
        return spec.base
    path = Path(spec.base) if Path(spec.base).is_absolute() else folder / spec.base
    if not path.is_file():
        raise ConfigError(f"{label}: base: no such config file {path}")
    return read_mapping(path)


def _check_objectives(spec: StudySpec, cfg: Config, label: str) -> None:
    from ..dataset_registry import ENTRIES
    from ..models.family import DISENTANGLEMENT_METRICS, EMBED, GENERATION_METRICS, GENERATIVE, JUDGED_METRICS, family
    fam = family(cfg.model.kind)
    known = fam.metric_names + COMMON_METRICS + (GENERATION_METRICS + JUDGED_METRICS if fam.has(GENERATIVE) else ())
    if fam.has(EMBED) and ENTRIES[cfg.data.name].factors:  # a data set with ground-truth factors
        known += DISENTANGLEMENT_METRICS
    for name in spec.objectives:
        if name not in known:
            raise ConfigError(f"{label}: objectives.{name}: not a metric that {cfg.model.kind} runs write "
                              f"(known: {', '.join(known)})")
