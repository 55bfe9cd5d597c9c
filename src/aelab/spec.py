"""The experiment spec: what to train, on what, and how to evaluate it.

A spec is plain data (YAML, JSON or a dict) validated by pydantic.  Unknown
keys are rejected, and every validation failure becomes one line naming the
dotted key path and what was expected.  ``--set a.b=c`` overrides address any
field by its dotted path; list items are addressed by index
(``model.encoder.0.units=64``).
"""
from __future__ import annotations

import json
import math
import numbers
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from .errors import ConfigError

from .spec_base import (MAX_SIZE, Activation, AutoencoderSpecBase, LayerSpec, LayerType,  # noqa: F401
                        ModelSpecBase, Strict as _Strict)

DATASET_NAMES = ("digits", "mnist-5k", "mnist", "fashion-mnist", "kmnist", "npz", "idx")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam")


class DataSpec(_Strict):
    """Which data set, and how it is preprocessed before training.

    Order of preprocessing: stratified subset (``samples``) -> train/test
    split (``test_size``, ``seed``) -> resize -> ``normalize`` (statistics
    from the training split) -> ``range`` (linear rescale into [lo, hi]).
    """

    name: Literal[DATASET_NAMES] = "mnist-5k"
    path: str | None = None
    normalize: Literal["unit", "standardize", "none"] = "unit"
    range: tuple[float, float] | None = None
    resize: tuple[int, int] | None = None
    samples: int | None = Field(default=None, ge=1)
    test_size: float = Field(default=0.2, ge=0.0, lt=1.0)
    seed: int = 0
    labels: list[int] | None = Field(
        default=None, description="the label value of each class, in class order; filled in when the "
        "data's labels are not 0..K-1 (e.g. 1..10)")

    @field_validator("resize", mode="before")
    @classmethod
    def _square(cls, v: Any) -> Any:
        return (v, v) if isinstance(v, int) else v

    @model_validator(mode="after")
    def _check(self) -> "DataSpec":
        if self.name in ("npz", "idx") and not self.path:
            raise ValueError(f"data.name '{self.name}' needs data.path")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(self.range)}")
        if self.resize is not None and min(self.resize) < 1:
            raise ValueError(f"resize must be positive, got {list(self.resize)}")
        if self.labels is not None and (len(set(self.labels)) != len(self.labels) or len(self.labels) < 2):
            raise ValueError(f"labels must be at least two distinct values, got {self.labels}")
        return self


ScheduleName = Literal["none", "step", "exponential", "cosine", "plateau"]
CHECKPOINT_SECONDS = 10.0  # the default checkpoint policy: bounds lost work and the checkpointing share


class TrainSpec(_Strict):
    """How the model is trained: minibatch gradient descent, a genetic
    algorithm or an evolution strategy (``method``).  The GA defaults are the
    GA paper's: copy the best individual into every slot and perturb ``k =
    mutated_weights`` random weights of each copy by uniform(-1, 1)."""

    method: Literal["gradient", "ga", "es"] = "gradient"
    optimizer: Literal[OPTIMIZERS] = "adam"
    lr: float = Field(default=1e-3, gt=0.0)
    momentum: float = Field(default=0.0, ge=0.0)
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0.0)
    optimizer_args: dict[str, Union[float, bool, tuple[float, float]]] = Field(default_factory=dict)
    optimizer_defaults: Literal["torch", "keras"] = "torch"
    schedule: ScheduleName = "none"
    schedule_args: dict[str, float] = Field(default_factory=dict)
    loss: Literal["mse", "mae", "bce"] = "mse"
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=128, ge=1)
    early_stopping: int | None = Field(default=None, ge=1, description="patience in epochs")
    min_delta: float = Field(default=0.0, ge=0.0)
    restore_best: bool = True
    grad_clip: float | None = Field(default=None, gt=0.0)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = Field(
        default="auto", description="CPU threads for torch: a number, or auto (the CPUs other processes "
        "leave free; $AELAB_THREADS or --threads when set); aelab.threads")
    # --- when a run writes its checkpoint (any method; aelab.training.checkpoint.CheckpointPolicy)
    checkpoint_every: int | None = Field(
        default=None, ge=1,
        description="checkpoint after at most this many epochs (GA/ES: generations) since the last one")
    checkpoint_seconds: float | None = Field(
        default=None, ge=0.0,
        description=f"checkpoint once this many seconds have passed since the last one (and after the first "
                    f"epoch); with neither field set: {CHECKPOINT_SECONDS:g}. Whichever is set, whichever comes "
                    f"first when both are; always at the end. A killed run replays at most that much work")
    # --- gradient-free training (method: ga | es)
    population: int = Field(default=20, ge=2)
    generations: int = Field(default=1000, ge=1)
    max_seconds: float | None = Field(default=None, gt=0.0)
    mutated_weights: int = Field(default=10, ge=1, description="k: genes perturbed per child (uniform)")
    elitism: int = Field(default=1, ge=0)
    selection: Literal["best", "tournament", "rank"] = "best"
    tournament_size: int = Field(default=3, ge=2)
    crossover: Literal["none", "uniform", "one_point"] = "none"
    mutation: Literal["uniform", "gaussian"] = "uniform"
    mutation_rate: float = Field(default=0.01, gt=0.0, le=1.0)
    sigma: float = Field(default=0.05, gt=0.0, description="gaussian mutation / ES noise scale")
    adaptive: bool = Field(default=False, description="adapt sigma by the 1/5th success rule")
    es: Literal["openai", "snes", "pgpe", "sepcma"] = "openai"
    fitness_batch: int | None = Field(default=None, ge=1, description="samples per generation; all if unset")
    fitness: Literal["mae", "mse"] = Field(default="mae", description="what evolution minimizes (the paper: MAE)")
    log_every: int = Field(default=10, ge=1, description="generations between history rows")
    # --- experiment trackers (aelab.training.trackers; docs/reports.md)
    track: Literal["tensorboard", "mlflow"] | None = Field(
        default=None, description="log metrics, config and figures to TensorBoard or MLflow")
    track_uri: str | None = Field(
        default=None, description="tensorboard: log dir; mlflow: tracking URI (default: inside the run dir)")

    @model_validator(mode="before")
    @classmethod
    def _checkpoint_policy(cls, data: Any) -> Any:
        """Neither checkpoint field set: every CHECKPOINT_SECONDS (written
        out, so config.yaml says what the run did)."""
        if isinstance(data, dict) and data.get("checkpoint_every") is None \
                and data.get("checkpoint_seconds") is None:
            data = {**data, "checkpoint_seconds": CHECKPOINT_SECONDS}
        return data

    @model_validator(mode="after")
    def _nesterov(self) -> "TrainSpec":
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer 'sgd' with momentum > 0")
        return self


class EvalSpec(_Strict):
    """How a trained model is scored.  O(n^2) metrics use at most
    ``max_samples`` codes drawn with ``seed``, so evaluation cost is bounded."""

    max_samples: int = Field(default=2000, ge=10)
    knn_k: int = Field(default=5, ge=1)
    trust_k: int = Field(default=5, ge=1)
    seed: int = 0
    figures: bool = True


# ------------------------------------------------------------------ model

# Fields the one flat ``model`` section of earlier versions gave every kind,
# with the values it wrote out: a run directory's config.yaml from then still
# loads (a default-valued field of another family is dropped; any other value
# is one line naming the kinds that have the field).
LEGACY_MODEL_DEFAULTS = {"latent_dim": 2, "latent_activation": "linear", "decoder": "mirror",
                         "output_activation": "sigmoid", "beta": 1.0, "kl_warmup": 0, "num_classes": None}


def _model_kind(v: Any) -> str:
    return v.get("kind", "ae") if isinstance(v, dict) else getattr(v, "kind", "ae")


def _model_union():
    """``model``: the union of every registered family's spec, told apart by
    ``kind`` (default ``ae``)."""
    from .models.family import spec_classes
    members = tuple(Annotated[cls, Tag(kind)] for kind, cls in spec_classes().items())
    return Annotated[Union[members], Discriminator(_model_kind)]


AnyModelSpec = _model_union()


def model_spec(kind: str = "ae", **fields) -> Any:
    """The spec of family ``kind`` with ``fields`` (e.g. ``model_spec("vae", latent_dim=8)``)."""
    from .models.family import spec_classes
    return spec_classes()[kind](**fields)


class ModelSpec:
    """The ``model`` section as one name for every family: ``ModelSpec(kind=
    "vae", latent_dim=8)`` and ``ModelSpec.model_validate({...})`` return
    the spec of the family ``kind`` names (default ``ae``)."""

    def __new__(cls, **fields):
        return cls.model_validate(fields)

    @staticmethod
    def model_validate(data: dict) -> Any:
        from pydantic import TypeAdapter
        return TypeAdapter(AnyModelSpec).validate_python(_migrate_model(data))


def _migrate_model(raw: Any) -> Any:
    """Check ``model.kind`` names a family, and drop what a config.yaml of the
    flat-model era wrote for fields this family does not have."""
    from .models.family import kinds, spec_classes
    if not isinstance(raw, dict):
        return raw
    kind = raw.get("kind", "ae")
    if not isinstance(kind, str) or kind not in kinds():
        raise ValueError(f"model.kind: {kind!r} is not a model family; expected one of {', '.join(kinds())} "
                         f"(aelab models lists them)")
    fields = spec_classes()[kind].model_fields
    out = {}
    for key, value in raw.items():
        if key in fields or key not in LEGACY_MODEL_DEFAULTS:
            out[key] = value
        elif value != LEGACY_MODEL_DEFAULTS[key]:
            owners = [k for k, c in spec_classes().items() if key in c.model_fields]
            raise ValueError(f"model.{key}: kind {kind} has no {key} (kinds that have it: {', '.join(owners)})")
    return out


class Config(_Strict):
    """A whole experiment: data + model + train + eval."""

    name: str | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    model: AnyModelSpec = Field(default_factory=model_spec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)

    @model_validator(mode="before")
    @classmethod
    def _model_family(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model" in data:
            data = {**data, "model": _migrate_model(data["model"])}
        return data


# --------------------------------------------------------------------- I/O


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: ``2024-01-31`` stays the string it
    looks like instead of becoming a date no config field can hold."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

MAX_NODES = 100_000  # values in one config (aliases counted each time they are used)


def parse_yaml(text: str):
    """``text`` as YAML (JSON is YAML too), timestamps left as strings."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def plain(value: Any, where: str, budget: list[int] | None = None) -> Any:
    """A fresh copy of ``value`` made only of what a config can hold --
    mappings with string keys, lists, strings, finite numbers, booleans and
    null -- or one ConfigError naming the first value that is not."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{where}: more than {MAX_NODES:,} values (a YAML alias bomb?)")
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ConfigError(f"{where}: key {k!r} is a {_kind(k)}; keys must be strings")
        return {k: plain(v, f"{where}.{k}", budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]", budget) for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value}")
        return float(value)
    raise ConfigError(f"{where}: a {_kind(value)} ({str(value)[:40]}) is not a config value; "
                      f"expected a string, number, boolean, list or mapping")


def _kind(v: Any) -> str:
    names = {"datetime": "date-time", "date": "date", "bytes": "binary value", "set": "set"}
    return names.get(type(v).__name__, type(v).__name__)


def read_mapping(path: str | Path) -> dict:
    """Read a YAML or JSON file holding a mapping; one clear line otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file")
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix == ".json" else parse_yaml(text)
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{p}: not valid YAML/JSON ({first})") from None
    except RecursionError:
        raise ConfigError(f"{p}: nested too deeply to be a config") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read it ({e.strerror or type(e).__name__})") from None
    if data is None:
        raise ConfigError(f"{p}: the file is empty; expected a mapping of data/model/train/eval")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return plain_tree(data, str(p))


def plain_tree(value: Any, where: str) -> Any:
    """:func:`plain`, with a value that contains itself (a recursive YAML
    alias) or nests beyond Python's stack reported as one line."""
    try:
        return plain(value, where)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply, or a YAML alias that contains itself") from None


_TYPE_TAG = re.compile(r"^(int|float|bool|str|none|(literal|list|tuple|dict|union)\[.*\]|function-.*|constrained-\w+|[A-Z]\w*)$")


def _path_str(loc: tuple) -> str:
    """``('model', 'encoder', 0, 'int')`` -> ``model.encoder[0]`` (pydantic's
    union-member tags such as ``int`` or ``literal['same']`` are dropped)."""
    out, previous = "", None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _TYPE_TAG.match(str(part)) and not (previous == "model" and _is_kind(part)):
            out += ("." if out else "") + str(part)
        previous = part
    return out


def _is_kind(part) -> bool:
    """``('model', 'vae', 'beta')``: pydantic names the family's tag in the path."""
    from .models.family import kinds
    return part in kinds()


def _message(e: dict) -> str:
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return "unknown key"
    if "input" in e and e["type"] != "missing" and not isinstance(e["input"], (dict, list)):
        return f"{msg} (got {e['input']!r})"
    return msg


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    """The most specific pydantic error as one line: ``source: key.path: what
    was expected``.  Where a union (``int | 'same'``, ``'mirror' | [layers]``)
    failed, the deepest path wins and alternatives at that path are joined."""
    groups: dict[str, list[dict]] = {}
    for e in err.errors():
        groups.setdefault(_path_str(e["loc"]), []).append(e)
    path = max(groups, key=lambda p: (p.count(".") + p.count("["), -list(groups).index(p)))
    msgs = list(dict.fromkeys(_message(e) for e in groups[path]))
    if len(msgs) > 1:
        got = next((f" (got {e['input']!r})" for e in groups[path]
                    if "input" in e and not isinstance(e["input"], (dict, list))), "")
        msgs = ["expected one of: " + "; ".join(m.split(" (got ")[0] for m in msgs) + got]
    return f"{source}: {path}: {msgs[0]}" if path else f"{source}: {msgs[0]}"


def parse_override(item: str) -> tuple[list[str], Any]:
    """``'a.b=3'`` -> (['a', 'b'], 3); the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected a dotted key such as train.epochs")
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError):
        value = raw
    return key.split("."), plain_tree(value, f"--set {key}")


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Return a copy of ``raw`` with each ``key=value`` override set in place."""
    out = plain_tree(raw, "config")
    for item in overrides or []:
        parts, value = parse_override(item)
        _set_path(out, parts, value, f"--set {item!r}")
    return out


def set_values(raw: dict, values: dict[str, Any], label: str = "key") -> dict:
    """Return a copy of ``raw`` with each dotted key in ``values`` set to its
    (already parsed) value, e.g. ``{"model.encoder": [32, 10]}``."""
    out = plain_tree(raw, "config")
    for key, value in values.items():
        _set_path(out, key.split("."), value, f"{label} {key!r}")
    return out


def _set_path(root: dict, parts: list[str], value: Any, label: str) -> None:
    node: Any = root
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            j = _index(node, part, parts[: i + 1], label)
            node[j] = _expand_layer(node[j])
            node = node[j]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ConfigError(f"{label}: {'.'.join(parts[:i])} is not a mapping")
    if isinstance(node, list):
        node[_index(node, parts[-1], parts, label)] = value
    elif isinstance(node, dict):
        node[parts[-1]] = value
    else:
        raise ConfigError(f"{label}: {'.'.join(parts[:-1])} is not a mapping")


def _expand_layer(item: Any) -> Any:
    """A list item about to be addressed by field: an int there is a dense
    layer's shorthand, so ``model.encoder.0.units=64`` reaches its units."""
    if isinstance(item, int) and not isinstance(item, bool):
        return {"type": "dense", "units": item}
    return item


def _index(node: list, part: str, parts: list[str], label: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        have = f"indexes 0..{len(node) - 1}" if node else "no items"
        raise ConfigError(f"{label}: {'.'.join(parts)}: no such list item ({'.'.join(parts[:-1])} has {have})")
    return int(part)


def load_config(source: "str | Path | dict | Config", overrides: list[str] | None = None) -> Config:
    """Build a validated :class:`Config` from a file, a dict or a Config."""
    if isinstance(source, Config):
        source = source.model_dump(mode="json")
        label = "config"
    elif isinstance(source, dict):
        label = "config"
    else:
        from .shipped import resolve  # a bare name is a shipped config (mnist-vae)
        source = resolve(source, "config")
        label = str(source)
        source = read_mapping(source)
    raw = apply_overrides(source, overrides)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, label)) from None


def dump_config(cfg: Config) -> str:
    """The fully resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
