"""Experiment trackers: ``track.backend: tensorboard | mlflow``.

A tracker is a trainer callback: it logs the resolved config when training
starts, every numeric column of each new ``history.csv`` row as a metric at
that epoch, and, once the run directory is complete (:func:`end_trackers`,
called after the figures exist), the final metrics and every figure.

Both back ends are optional extras; asking for one that is not installed is
one line naming the extra.  Defaults keep everything inside the run
directory: TensorBoard event files in ``RUN_DIR/tensorboard/``, MLflow in a
SQLite store ``RUN_DIR/mlflow.db`` with artifacts in ``RUN_DIR/mlartifacts/``
(MLflow >= 3.7 refuses its old ``./mlruns`` file store unless
``MLFLOW_ALLOW_FILE_STORE=true``).  ``track.uri`` points elsewhere: a
log directory for TensorBoard, any tracking URI for MLflow.
"""
from __future__ import annotations

import importlib
import json
import math
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..runs import FIGURES, read_json, write_json
from ..spec import Config, dump_config
from .gradient import Callback

TB_DIR, MLFLOW_DB, MLFLOW_ARTIFACTS, MLFLOW_RUN = "tensorboard", "mlflow.db", "mlartifacts", "mlflow_run.json"


def require(module: str, extra: str) -> None:
    """Import ``module`` or fail with one line naming the extra that installs it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"track.backend: {extra} needs the optional dependency {module!r}; "
                          f"install it with: pip install 'aelab[{extra}]'") from None


def make_trackers(cfg: Config, run_dir: Path) -> list["Tracker"]:
    """The tracker ``cfg.track.backend`` asks for (none by default).  Checks the
    extra is installed, so a missing one fails before anything is written."""
    if cfg.track.backend == "tensorboard":
        require("tensorboard", "tensorboard")
        return [TensorBoardTracker(cfg, run_dir)]
    if cfg.track.backend == "mlflow":
        require("mlflow", "mlflow")
        return [MLflowTracker(cfg, run_dir)]
    return []


def end_trackers(callbacks, run) -> None:
    """Hand the finished run (metrics, figures) to every tracker among ``callbacks``."""
    for cb in callbacks:
        if isinstance(cb, Tracker):
            cb.on_run_end(run)


def epoch_metrics(row: dict) -> dict[str, float]:
    """The finite numeric columns of a history row, ``epoch`` excluded."""
    return {k: float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def final_metrics(metrics: dict) -> dict[str, float]:
    """``metrics.json``'s finite numbers, under ``final/``."""
    return {f"final/{k}": v for k, v in epoch_metrics(metrics).items()}


def figure_paths(run_dir: Path) -> list[Path]:
    return sorted((run_dir / FIGURES).glob("*.png"))


def flat_params(d: dict, prefix: str = "") -> dict[str, str]:
    """The resolved config as dotted ``key: value`` strings (MLflow params)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out |= flat_params(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return out


class Tracker(Callback):
    """Common shape: config at start, a history row per epoch, figures at the end."""

    def __init__(self, cfg: Config, run_dir: Path):
        self.cfg, self.run_dir = cfg, Path(run_dir)

    def on_train_start(self, trainer) -> None:
        self.open()
        self.log_config(dump_config(self.cfg))

    def on_epoch_end(self, trainer) -> None:
        row = trainer.state.history[-1]
        self.log_metrics(epoch_metrics(row), int(row["epoch"]))

    def on_run_end(self, run) -> None:
        step = len(run.history)
        self.log_metrics(final_metrics(run.metrics), step)
        self.log_figures(figure_paths(run.path), step)
        self.close(run.status)

    # back ends implement these
    def open(self) -> None: ...
    def log_config(self, text: str) -> None: ...
    def log_metrics(self, values: dict[str, float], step: int) -> None: ...
    def log_figures(self, paths: list[Path], step: int) -> None: ...
    def close(self, status: str) -> None: ...


class TensorBoardTracker(Tracker):
    """Event files via ``torch.utils.tensorboard.SummaryWriter``: scalars per
    epoch, the config as text, figures as images."""

    def open(self) -> None:
        from torch.utils.tensorboard import SummaryWriter
        self.log_dir = Path(self.cfg.track.uri) if self.cfg.track.uri else self.run_dir / TB_DIR
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_config(self, text: str) -> None:
        # TensorBoard renders text as Markdown: indent to keep the YAML verbatim
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()), 0)

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def log_figures(self, paths: list[Path], step: int) -> None:
        from PIL import Image
        for p in paths:
            with Image.open(p) as im:
                self.writer.add_image(f"figures/{p.stem}", np.asarray(im.convert("RGB")), step, dataformats="HWC")

    def close(self, status: str) -> None:
        self.writer.add_text("status", status, 0)
        self.writer.close()


class MLflowTracker(Tracker):
    """One MLflow run per aelab run (kept across ``--resume`` through
    ``RUN_DIR/mlflow_run.json``), through ``MlflowClient`` so no global
    MLflow state is touched."""

    def open(self) -> None:
        from mlflow.tracking import MlflowClient
        default = self.cfg.track.uri is None
        self.uri = self.cfg.track.uri or f"sqlite:///{(self.run_dir / MLFLOW_DB).resolve()}"
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id = self._resumed_run_id() or self._new_run(default)

    def _experiment_id(self, default_store: bool) -> str:
        name = self.cfg.name or "aelab"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (self.run_dir / MLFLOW_ARTIFACTS).resolve().as_uri() if default_store else None
        return self.client.create_experiment(name, artifact_location=location)

    def _new_run(self, default_store: bool) -> str:
        run = self.client.create_run(self._experiment_id(default_store), run_name=self.run_dir.name,
                                     tags={"aelab.run_dir": str(self.run_dir.resolve())})
        write_json(self.run_dir / MLFLOW_RUN, {"run_id": run.info.run_id, "tracking_uri": self.uri})
        return run.info.run_id

    def _resumed_run_id(self) -> str | None:
        path = self.run_dir / MLFLOW_RUN
        if not path.exists():
            return None
        saved = read_json(path)
        return saved.get("run_id") if saved.get("tracking_uri") == self.uri else None

    def log_config(self, text: str) -> None:
        from mlflow.entities import Param
        params = [Param(k, v[:6000]) for k, v in flat_params(self.cfg.model_dump(mode="json")).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.client.log_text(self.run_id, text, "config.yaml")

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def log_figures(self, paths: list[Path], step: int) -> None:
        for p in paths:
            self.client.log_artifact(self.run_id, str(p), artifact_path="figures")

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if status == "completed" else "FAILED")
