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

from .dataset_registry import ENTRIES
from .errors import ConfigError

from .spec_base import (MAX_SIZE, Activation, AutoencoderSpecBase, LayerSpec, LayerType,  # noqa: F401
                        ModelSpecBase, Strict as _Strict)

from .train_spec import (CHECKPOINT_SECONDS, LEGACY_TRAIN_DEFAULTS, MOVED, OPTIMIZERS,  # noqa: F401
                         ScheduleName, TrackSpec, TrainBase)

DATASET_NAMES = tuple(ENTRIES)  # aelab.dataset_registry: one entry per data set name


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


class EvalSpec(_Strict):
    """How a trained model is scored.  O(n^2) metrics use at most
    ``max_samples`` codes (or generated samples) drawn with ``seed``, so
    evaluation cost is bounded."""

    max_samples: int = Field(default=2000, ge=10)
    knn_k: int = Field(default=5, ge=1)
    trust_k: int = Field(default=5, ge=1)
    seed: int = 0
    figures: bool = True
    judge: str | None = Field(default=None, description="a classifier run directory that judges generated samples")


# ------------------------------------------------------------------ model

# Fields the one flat ``model`` section of earlier versions gave every kind,
# with the values it wrote out: a run directory's config.yaml from then still
# loads (a default-valued field of another family is dropped; any other value
# is one line naming the kinds that have the field).
LEGACY_MODEL_DEFAULTS = {"latent_dim": 2, "latent_activation": "linear", "decoder": "mirror",
                         "output_activation": "sigmoid", "beta": 1.0, "kl_warmup": 0, "num_classes": None}


class PluggedSection:
    """A config section that is the union of the registered plug-ins' specs,
    told apart by ``field`` (``model`` by ``kind``, ``train`` by
    ``method``).  ``ModelSpec(kind="vae", latent_dim=8)`` and
    ``ModelSpec.model_validate({...})`` return the spec of the plug-in the
    field names (its default when absent); :attr:`union` is the pydantic
    type :class:`Config` holds."""

    def __init__(self, section: str, field: str, default: str, registry: str, legacy: dict, hint: str = ""):
        self.section, self.field, self.default, self.legacy, self.hint = section, field, default, legacy, hint
        self._registry = registry  # module with spec_classes()
        members = tuple(Annotated[cls, Tag(key)] for key, cls in self.specs().items())
        self.union = Annotated[Union[members], Discriminator(self.key_of)]
        self._adapter = None

    def specs(self) -> dict[str, type]:
        import importlib
        return importlib.import_module(self._registry, __package__).spec_classes()

    def key_of(self, v: Any) -> str:
        return v.get(self.field, self.default) if isinstance(v, dict) else getattr(v, self.field, self.default)

    def __call__(self, **fields) -> Any:
        return self.model_validate(fields)

    def model_validate(self, data: dict) -> Any:
        if self._adapter is None:  # built once: a TypeAdapter compiles the union's schema
            from pydantic import TypeAdapter
            self._adapter = TypeAdapter(self.union)
        return self._adapter.validate_python(self.migrate(data))

    def migrate(self, raw: Any) -> Any:
        """Check the field names a registered plug-in, and drop what a
        config.yaml of the flat-section era wrote, at its old defaults, for
        fields this plug-in does not have; any other field of another
        plug-in is one line naming the ones that have it."""
        from .plugins import owners
        if not isinstance(raw, dict):
            return raw
        specs, key = self.specs(), raw.get(self.field, self.default)
        where = f"{self.section}.{self.field}"
        if not isinstance(key, str) or key not in specs:
            raise ValueError(f"{where}: {key!r} is not a {self.noun}; expected one of {', '.join(specs)}{self.hint}")
        fields, out = specs[key].model_fields, {}
        for name, value in raw.items():
            if name in fields or name not in self.legacy:
                out[name] = value
            elif value != self.legacy[name]:
                raise ValueError(f"{self.section}.{name}: {self.field} {key} has no {name} "
                                 f"({self.plural} that have it: {', '.join(owners(specs, name))})")
        return out

    def fit(self, source: dict, out: dict, explicit: set[str], lenient: bool = False) -> dict:
        """``out`` with this section's fields of other plug-ins dropped when
        the values switched the plug-in (see :func:`fit_method`)."""
        before, now = source.get(self.section), out.get(self.section)
        if not isinstance(now, dict):
            return out
        key, specs = self.key_of(now), self.specs()
        if not isinstance(key, str) or key not in specs:
            return out  # validation names what is wrong with it
        if key == self.key_of(before if isinstance(before, dict) else {}) and not lenient:
            return out
        mine = specs[key].model_fields
        others = {k for other, cls in specs.items() if other != key for k in cls.model_fields}
        drop = {k for k in now if k not in mine and k in others
                and (lenient or f"{self.section}.{k}" not in explicit)}
        return {**out, self.section: {k: v for k, v in now.items() if k not in drop}}

    @property
    def noun(self) -> str:
        return {"kind": "model family", "method": "training method"}.get(self.field, self.field)

    @property
    def plural(self) -> str:
        return {"kind": "kinds", "method": "methods"}.get(self.field, self.field + "s")


ModelSpec = PluggedSection("model", "kind", "ae", ".models.family", LEGACY_MODEL_DEFAULTS,
                           " (aelab models lists them)")
AnyModelSpec = ModelSpec.union


def model_spec(kind: str = "ae", **fields) -> Any:
    """The spec of family ``kind`` with ``fields`` (e.g. ``model_spec("vae", latent_dim=8)``)."""
    return ModelSpec.specs()[kind](**fields)


# ------------------------------------------------------------------ train

TrainSpec = PluggedSection("train", "method", "gradient", ".training.registry", LEGACY_TRAIN_DEFAULTS)
AnyTrainSpec = TrainSpec.union


def _move_sections(data: dict) -> dict:
    """``train.track`` / ``train.track_uri`` of earlier versions: read as
    ``track.backend`` / ``track.uri``, said in one line."""
    train = data.get("train")
    if not isinstance(train, dict) or not any(k in train for k in MOVED):
        return data
    import warnings
    train, track = dict(train), dict(data.get("track") or {})
    for old, new in MOVED.items():
        if old in train:
            value = train.pop(old)
            if value is not None:
                warnings.warn(f"train.{old} is now {new} (read as such; write it there)", stacklevel=4)
                track.setdefault(new.split(".")[1], value)
    return {**data, "train": train, **({"track": track} if track else {})}


def fit_method(source: dict, out: dict, explicit: set[str], lenient: bool = False) -> dict:
    """``out`` (``source`` with values set) with the ``model`` and ``train``
    fields its kind and method lack removed where they came from ``source``
    while the values switched the kind or method (``configs/x.yaml --set
    train.method=ga`` drops the file's optimizer; ``--set model.kind=ae``
    a VAE's beta), and -- ``lenient``, for studies whose trials mix
    methods -- where they were set for every trial."""
    for section in (ModelSpec, TrainSpec):
        out = section.fit(source, out, explicit, lenient)
    return out


class Config(_Strict):
    """A whole experiment: data + model + train + eval."""

    name: str | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    model: AnyModelSpec = Field(default_factory=model_spec)
    train: AnyTrainSpec = Field(default_factory=TrainSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    track: TrackSpec = Field(default_factory=TrackSpec)

    @model_validator(mode="before")
    @classmethod
    def _plug_ins(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = _move_sections(data)
        if "model" in data:
            data = {**data, "model": ModelSpec.migrate(data["model"])}
        if "train" in data:
            data = {**data, "train": TrainSpec.migrate(data["train"])}
        return data


# --------------------------------------------------------------------- I/O


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML without implicit timestamps: ``2024-01-31`` stays the string it
    looks like instead of becoming a date no config field can hold.  Parsed
    by libyaml where PyYAML has it (a study reads hundreds of config files:
    15 ms each in pure Python, a tenth of that in C)."""


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
        if "flow level" in str(e):  # libyaml's own cap on nesting
            raise ConfigError(f"{p}: nested too deeply to be a config") from None
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
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i >= 2 and loc[i - 2] == "space" and part in SPACE_TAGS:  # a study's space entry: its form's tag
            pass
        elif not _TYPE_TAG.match(str(part)) and not _is_tag(previous, part):
            out += ("." if out else "") + str(part)
        previous = part
    return out


SPACE_TAGS = ("list", "choices", "range")  # aelab.studies.spec.SpaceEntry's forms


def _is_tag(section, part) -> bool:
    """``('model', 'vae', 'beta')``, ``('train', 'ga', 'population')``:
    pydantic names the union member's tag in the path."""
    if section == "model":
        from .models.family import kinds
        return part in kinds()
    if section == "train":
        from .training.registry import methods
        return part in methods()
    return False


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
    explicit = set()
    for item in overrides or []:
        parts, value = parse_override(item)
        _set_path(out, parts, value, f"--set {item!r}")
        explicit.add(".".join(parts))
    return fit_method(raw, out, explicit)


def set_values(raw: dict, values: dict[str, Any], label: str = "key", lenient: bool = False) -> dict:
    """Return a copy of ``raw`` with each dotted key in ``values`` set to its
    (already parsed) value, e.g. ``{"model.encoder": [32, 10]}``; with
    ``lenient`` (a study's trial), ``train`` fields its method lacks are
    dropped (:func:`fit_method`)."""
    out = plain_tree(raw, "config")
    for key, value in values.items():
        _set_path(out, key.split("."), value, f"{label} {key!r}")
    return fit_method(raw, out, set(values), lenient)


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


def load_config(source: "str | Path | dict | Config", overrides: list[str] | None = None,
                recorded: bool = False) -> Config:
    """Build a validated :class:`Config` from a file, a dict or a Config.
    ``recorded``: a run directory's config.yaml, which earlier versions wrote
    with every method's fields (those the run's method lacks are dropped)."""
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
    if recorded:
        raw = fit_method({}, raw, set(), lenient=True)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, label)) from None


def dump_config(cfg: Config) -> str:
    """The fully resolved config as YAML (every default written out)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def seeded(cfg: Config, repeat: int) -> Config:
    """``cfg`` with ``train.seed`` advanced by ``repeat`` (a study's repeats, ``--repeats``)."""
    return load_config(set_values(cfg.model_dump(mode="json"), {"train.seed": cfg.train.seed + repeat}))
