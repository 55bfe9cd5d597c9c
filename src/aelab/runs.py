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
unpickled.
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .atomic import atomic_path, write_text
from .errors import RunDirError
from .models import build_model, count_parameters
from .spec import Config, dump_config, load_config

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
    """Check ``path`` can take a new run: it must not already hold one."""
    p = Path(path)
    if (p / CONFIG).exists():
        raise RunDirError(f"{p}: already holds a run; use --resume {p} or choose another --out")
    if p.exists() and not p.is_dir():
        raise RunDirError(f"{p}: exists and is not a directory")
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


def save_model(path: Path, model: torch.nn.Module, input_shape, num_classes: int | None) -> None:
    """Final weights (safetensors) plus what is needed to rebuild the module."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(path / WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "aelab-model-1"})
    write_json(path / MODEL_INFO, {
        "kind": model.kind, "input_shape": list(input_shape), "num_classes": num_classes,
        "parameters": count_parameters(model), "aelab_version": __version__, "weights": WEIGHTS})


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing") from None
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(v: str):
    if v == "":
        return math.nan
    try:
        return int(v) if v.lstrip("-").isdigit() else float(v)
    except ValueError:
        return v


def load_run(path: str | Path) -> Run:
    """Read a run directory's config, metrics, history and model info."""
    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"{p}: no such run directory")
    if not (p / CONFIG).exists():
        raise RunDirError(f"{p}: not a run directory ({CONFIG} missing)")
    cfg = load_config(p / CONFIG)
    metrics = read_json(p / METRICS) if (p / METRICS).exists() else {}
    info = read_json(p / MODEL_INFO) if (p / MODEL_INFO).exists() else {}
    return Run(p, cfg, metrics, read_history(p / HISTORY), info)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a run's model from its config and load its final weights."""
    run = load_run(path)
    if not run.model_info:
        raise RunDirError(f"{run.path}: has no trained model yet ({MODEL_INFO} missing)")
    model = build_model(run.config.model, run.model_info["input_shape"], run.model_info.get("num_classes"))
    try:
        state = load_file(str(run.path / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise RunDirError(f"{run.path / WEIGHTS}: unreadable weights ({e})") from None
    model.load_state_dict(state)
    return model.to(device).eval()
