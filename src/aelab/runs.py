"""The run directory: what a run writes, and how it is read back.

```
RUN_DIR/
  config.yaml             fully resolved config (written before training)
  history.csv             one row per epoch: epoch, train_loss, val_loss, seconds, ...
  checkpoint.safetensors  resumable state (weights, optimizer, epoch, RNG, history)
  model.safetensors       final weights
  model.json              what is needed to rebuild the model (kind, input shape, classes)
  metrics.json            test-split metrics + status
  figures/*.png           loss curves, reconstructions, latent scatter, ...
  report.md               a readable summary linking the figures
```
Every file is written to a temporary name and renamed (:mod:`aelab.atomic`);
weights are safetensors and everything else JSON/YAML/CSV, so nothing is ever
unpickled.  Everything read back is checked: a damaged or hand-edited file is
one line naming the file and what is wrong with it.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from .atomic import atomic_path, write_text
from .errors import RunDirError
from .outdir import check_dir
from .spec import Config, dump_config, format_validation_error, load_config
from .version import __version__

if TYPE_CHECKING:  # torch is imported where weights are read or written
    import torch

CONFIG, METRICS, HISTORY = "config.yaml", "metrics.json", "history.csv"
WEIGHTS, MODEL_INFO, CHECKPOINT, REPORT, FIGURES = (
    "model.safetensors", "model.json", "checkpoint.safetensors", "report.md", "figures")


@dataclass
class Run:
    """A run directory read back from disk."""

    path: Path
    config: Config
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    model_info: dict = field(default_factory=dict)
    has_model: bool = False  # model.json (and so final weights) written

    @property
    def status(self) -> str:
        return self.metrics.get("status", "incomplete")


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    """``runs/<name>-<timestamp>``, made unique if it already exists."""
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    return path


def prepare_new(path: str | Path) -> Path:
    """Check ``path`` can take a new run: a writable place that does not
    already hold one."""
    p = check_dir(path)
    if (p / CONFIG).exists():
        raise RunDirError(f"{p}: already holds a run; use --resume {p} or choose another --out")
    return p


def write_config(path: Path, cfg: Config) -> None:
    write_text(path / CONFIG, dump_config(cfg))


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def write_json(path: Path, data: dict) -> None:
    """Strict JSON (NaN and inf become null) written atomically."""
    write_text(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")


def save_model(path: Path, model: "torch.nn.Module", input_shape, num_classes: int | None) -> None:
    """Final weights (safetensors) plus what is needed to rebuild the module."""
    from safetensors.torch import save_file

    from .models import count_parameters
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path / WEIGHTS, durable=True) as tmp:  # the only copy of the trained weights
        save_file(tensors, str(tmp), metadata={"format": "aelab-model-1"})
    write_json(path / MODEL_INFO, {
        "kind": model.kind, "input_shape": list(input_shape), "num_classes": num_classes,
        "parameters": count_parameters(model), "aelab_version": __version__, "weights": WEIGHTS})


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; one line if missing, malformed or not an object."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing") from None
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except (UnicodeDecodeError, RecursionError):
        raise RunDirError(f"{path}: not valid JSON (not UTF-8 text, or nested too deeply)") from None
    except OSError as e:
        raise RunDirError(f"{path}: cannot read it ({e.strerror or type(e).__name__})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


class ModelInfo(BaseModel):
    """``model.json``: what rebuilding the module needs besides config.yaml."""

    model_config = ConfigDict(extra="allow")
    kind: str
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt]
    num_classes: int | None = Field(default=None, ge=2)
    parameters: int | None = Field(default=None, ge=0)
    weights: str = "model.safetensors"


class Metrics(BaseModel):
    """``metrics.json``: a status and named numbers (or short texts)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["completed", "diverged", "collapsed", "incomplete", "running"] = "incomplete"


def _checked(path: Path, schema: type[BaseModel]) -> dict:
    data = read_json(path)
    try:
        schema.model_validate(data)
    except ValidationError as e:
        raise RunDirError(format_validation_error(e, str(path))) from None
    return data


def read_history(path: Path) -> list[dict]:
    """``history.csv`` rows as dicts of numbers (empty cells are NaN)."""
    if not path.exists():
        return []
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            rows = [_history_row(path, header, cells, i + 2) for i, cells in enumerate(reader)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise RunDirError(f"{path}: not a readable CSV file ({e})") from None
    if rows and (not header or header[0] != "epoch"):
        raise RunDirError(f"{path}: expected a header starting with 'epoch', got {header[:4]}")
    return rows


def _history_row(path: Path, header: list[str], cells: list[str], line: int) -> dict:
    if len(cells) != len(header):
        raise RunDirError(f"{path}: line {line}: {len(cells)} values for {len(header)} columns")
    row = {}
    for key, cell in zip(header, cells):
        value = _number(cell)
        if value is None:
            raise RunDirError(f"{path}: line {line}: column {key!r}: expected a number, got {cell[:40]!r}")
        row[key] = value
    return row


def _number(v: str) -> int | float | None:
    """A history cell as a number (empty: NaN); ``None`` when it is not one."""
    if v == "":
        return math.nan
    try:
        return int(v) if v.lstrip("-").isdigit() else float(v)
    except ValueError:
        return None


def load_run(path: str | Path) -> Run:
    """Read a run directory's config, metrics, history and model info."""
    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"{p}: no such run directory")
    if not (p / CONFIG).exists():
        raise RunDirError(f"{p}: not a run directory ({CONFIG} missing)")
    cfg = load_config(p / CONFIG, recorded=True)
    metrics = _checked(p / METRICS, Metrics) if (p / METRICS).exists() else {}
    info = _checked(p / MODEL_INFO, ModelInfo) if (p / MODEL_INFO).exists() else None
    if info is not None and info["kind"] != cfg.model.kind:
        raise RunDirError(f"{p / MODEL_INFO}: kind {info['kind']!r} does not match "
                          f"{CONFIG}'s model.kind {cfg.model.kind!r}")
    return Run(p, cfg, metrics, read_history(p / HISTORY), info or {}, info is not None)


def load_model(path: str | Path, device: "str | torch.device" = "cpu") -> "torch.nn.Module":
    """Rebuild a run's model from its config and load its final weights."""
    from .models import build_model
    run = load_run(path)
    if not run.has_model:
        raise RunDirError(f"{run.path}: has no trained model yet ({MODEL_INFO} missing)")
    model = build_model(run.config.model, run.model_info["input_shape"], run.model_info.get("num_classes"))
    load_weights(model, run.path / WEIGHTS)
    return model.to(device).eval()


def load_weights(model: "torch.nn.Module", path: Path, prefix: str = "") -> None:
    """Load safetensors weights into ``model``; a file that does not fit the
    model is one line naming the first tensor that differs."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(f"{path}: unreadable weights ({' '.join(str(e).split())})") from None
    fit_state(model, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, path)


def fit_state(model: "torch.nn.Module", state: dict, path: Path) -> None:
    """``model.load_state_dict(state)`` with a one-line reason when they differ."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise RunDirError(f"{path}: weights do not match the model config.yaml describes ({what}; "
                          f"{len(missing)} missing, {len(extra)} unexpected tensors)")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape) or state[k].dtype != v.dtype:
            raise RunDirError(f"{path}: {k}: expected {tuple(v.shape)} {v.dtype}, "
                              f"got {tuple(state[k].shape)} {state[k].dtype}")
    model.load_state_dict(state)
