"""The Python API: everything the CLI does, with the same names.

``train`` turns a spec into a finished run directory; ``evaluate`` re-scores
one; ``show`` reads one back; ``datasets`` lists the data sets.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

from .data import Dataset, list_datasets, load_dataset
from .errors import ConfigError, RunDirError
from .evaluation import evaluate_model
from .figures import relative, run_figures
from .models import build_model, count_parameters, output_range_warning
from .report import render_report
from .atomic import write_text
from .runs import (CHECKPOINT, FIGURES, HISTORY, METRICS, REPORT, Run, default_run_dir, load_model,
                   load_run, prepare_new, save_model, write_config, write_json)
from .spec import Config, load_config
from .training.callbacks import (CheckpointCallback, EvolutionCheckpointCallback, HistoryCallback,
                                 ProgressCallback)
from .training.checkpoint import read_tensors_and_state, restore_checkpoint
from .training.evolution import EvolutionTrainer
from .training.gradient import GradientTrainer, TrainState
from .training.trackers import end_trackers, make_trackers
from .training.objectives import make_objective


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def datasets():
    """Every known data set with shape, size, source and offline availability."""
    return list_datasets()


def _run_name(config, cfg: Config) -> str:
    if cfg.name:
        return cfg.name
    return Path(config).stem if isinstance(config, (str, Path)) else "run"


def build(cfg: Config, data: Dataset, device: torch.device, warn: bool = True) -> torch.nn.Module:
    """The seeded, untrained model for ``cfg`` on ``data``."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, data.shape, data.num_classes).to(device)
    message = output_range_warning(cfg.model, data.value_range)
    if message and warn:
        warnings.warn(message, stacklevel=3)
    return model


def tensors(data: Dataset, device) -> tuple:
    """The data set as device tensors: (x_train, y_train, x_val, y_val)."""
    as_t = lambda a, dt=None: None if a is None else torch.as_tensor(a, device=device, dtype=dt)
    return (as_t(data.x_train), as_t(data.y_train, torch.long),
            as_t(data.x_test), as_t(data.y_test, torch.long))


def fit(model: torch.nn.Module, cfg: Config, data: Dataset, callbacks=(), resume_from: Path | None = None
        ) -> "GradientTrainer | EvolutionTrainer":
    """Train ``model`` on ``data`` per ``cfg.train`` (gradient descent, GA or
    ES); a gradient run optionally continues from a checkpoint."""
    if cfg.train.method != "gradient":
        trainer = EvolutionTrainer(model, cfg.train, callbacks)
        if resume_from is not None and resume_from.exists():
            trainer.restore(*read_tensors_and_state(resume_from))
        trainer.fit(*tensors(data, trainer.device))
        return trainer
    trainer = GradientTrainer(model, make_objective(cfg.model, cfg.train), cfg.train, callbacks)
    if resume_from is not None and resume_from.exists():
        restore_checkpoint(resume_from, trainer)
    trainer.fit(*tensors(data, trainer.device))
    return trainer


def checkpoint_callback(cfg: Config, path: Path):
    """Gradient runs checkpoint every N epochs; GA/ES runs at most every N
    seconds (a population can be tens of MB)."""
    if cfg.train.method == "gradient":
        return CheckpointCallback(path, cfg.train.checkpoint_every)
    return EvolutionCheckpointCallback(path, cfg.train.checkpoint_seconds)


def train(config=None, *, overrides: list[str] | None = None, out: str | Path | None = None,
          resume: str | Path | None = None, quiet: bool = True) -> Run:
    """Train the experiment ``config`` (a path, dict or Config) into a run
    directory, or finish the run in ``resume`` after an interruption."""
    if resume is not None:
        if config is not None or overrides:
            raise ConfigError("--resume continues a run with its own config.yaml; drop CONFIG and --set")
        run_dir, cfg = Path(resume), load_run(resume).config
    else:
        cfg = load_config(config, overrides)
        run_dir = prepare_new(Path(out) if out else default_run_dir(_run_name(config, cfg)))
    data = load_dataset(cfg.data)  # bad data fails here, before anything is written
    device = resolve_device(cfg.train.device)
    model = build(cfg, data, device, warn=not quiet)
    trackers = make_trackers(cfg, run_dir)  # a missing tracker extra fails here, before anything is written
    if resume is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, cfg)
    callbacks = [HistoryCallback(run_dir / HISTORY), checkpoint_callback(cfg, run_dir / CHECKPOINT), *trackers]
    if not quiet:
        callbacks.insert(0, ProgressCallback(run_dir.name))
    trainer = fit(model, cfg, data, callbacks, run_dir / CHECKPOINT if resume is not None else None)
    run = finish(run_dir, cfg, data, trainer.model, trainer.state, device)
    end_trackers(trackers, run)  # figures and final metrics exist only now
    return run


def training_summary(state: TrainState, model: torch.nn.Module) -> dict:
    """Status and bookkeeping of a finished training (no test metrics)."""
    last = state.history[-1] if state.history else {}
    summary = {"status": state.status, "epochs_trained": state.epoch, "stopped_early": state.stopped_early,
               "best_epoch": state.best_epoch, "train_loss": last.get("train_loss"),
               "val_loss": last.get("val_loss"), "parameters": count_parameters(model),
               "seconds": sum(r.get("seconds", 0.0) for r in state.history)}
    if state.status == "diverged":
        summary["diverged_epoch"] = state.epoch
    return summary


def finish(run_dir: Path, cfg: Config, data: Dataset, model, state: TrainState, device) -> Run:
    """Write weights, metrics, figures and report of a trained model."""
    save_model(run_dir, model, data.shape, data.num_classes)
    metrics = training_summary(state, model)
    if state.status == "completed":
        metrics |= evaluate_model(model, cfg, data, device)
    write_json(run_dir / METRICS, metrics)
    figures = _figures(run_dir, cfg, data, model, state, device)
    run = load_run(run_dir)
    write_text(run_dir / REPORT, render_report(run, figures))
    return run


def _figures(run_dir, cfg, data, model, state, device) -> list[str]:
    if not cfg.eval.figures:
        return []
    if state.status != "completed":  # a diverged model's outputs are NaN: loss curves only
        from . import plots
        return relative([plots.save_loss_curves(state.history, run_dir / FIGURES / "loss_curves.png")], run_dir)
    return relative(run_figures(run_dir / FIGURES, model, data, state.history, device, cfg.eval.seed,
                                state.stages), run_dir)


def evaluate(run_dir: str | Path, *, figures: bool = True) -> dict:
    """Re-score a trained run on its data (rewrites metrics.json, figures, report)."""
    run = load_run(run_dir)
    if run.status == "diverged":
        raise RunDirError(f"{run.path}: the run diverged; there is nothing meaningful to evaluate")
    device = resolve_device(run.config.train.device)
    model = load_model(run.path, device)
    data = load_dataset(run.config.data)
    metrics = {k: v for k, v in run.metrics.items()} | evaluate_model(model, run.config, data, device)
    write_json(run.path / METRICS, metrics)
    figs = relative(run_figures(run.path / FIGURES, model, data, run.history, device, run.config.eval.seed),
                    run.path) if figures else []
    write_text(run.path / REPORT, render_report(load_run(run.path), figs))
    return metrics


def show(run_dir: str | Path) -> Run:
    """Read a run directory back (config, metrics, history, model info)."""
    run = load_run(run_dir)
    if not (run.path / METRICS).exists() and not (run.path / CHECKPOINT).exists():
        print(f"note: {run.path} has not finished an epoch yet", file=sys.stderr)
    return run
