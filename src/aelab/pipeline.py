"""A run end to end: data -> model -> trainer -> run directory.

The heavy half of :mod:`aelab.api` (it imports torch): :mod:`aelab.api`
validates the spec and the output place first, so a mistake there is
reported without paying for these imports.  The story of a run reads top to
bottom in :func:`train_run`.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import torch

from . import interrupts, threads
from .atomic import write_text
from .data import Dataset, load_dataset
from .errors import ConfigError, ModelSpecError, RunDirError
from .evaluation import evaluate_model
from .figures import relative, run_figures
from .models.build import build_model, count_parameters, output_range_warning
from .models.family import family
from .outdir import exclusive, writing
from .report import render_report
from .runs import (CHECKPOINT, CONFIG, FIGURES, HISTORY, METRICS, REPORT, Run, load_model, load_run, prepare_new,
                   save_model, write_config, write_json)
from .spec import Config
from .training.callbacks import HistoryCallback, ProgressCallback
from .training.gradient import TrainState
from .training.progress import closing_progress
from .training.registry import trainer
from .training.trackers import end_trackers, make_trackers

EVALUATED = ("completed", "collapsed")  # finished with finite weights: metrics and figures are drawn


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


# ------------------------------------------------------------------ the run


def train_run(cfg: Config, run_dir: Path, *, resuming: bool = False, quiet: bool = True) -> Run:
    """Train ``cfg`` into ``run_dir`` (or finish it when ``resuming``).
    Everything that can be checked is checked before the directory is
    touched; a failure before the first checkpoint leaves nothing behind
    (an interrupted run keeps its config.yaml: ``--resume`` starts it from
    epoch 0)."""
    data = load_dataset(cfg.data)  # bad data fails here, before anything is written
    cfg = resolved(cfg, data, resuming)
    n_threads = cfg.train.threads
    device = resolve_device(cfg.train.device)
    model = build(cfg, data, device, warn=not quiet)
    trackers = make_trackers(cfg, run_dir)  # a missing tracker extra fails here, before anything is written
    if not quiet:  # like the progress bar: for someone watching the run
        _warn_once(threads.busy_warning(n_threads))
    resume_cmd = interrupts.command("aelab", "train", "--resume", run_dir)
    resumable = lambda: resuming or (run_dir / CONFIG).exists()  # noqa: E731
    with interrupts.hint(f"resume with `{resume_cmd}`", when=resumable), \
            run_directory(run_dir, cfg, resuming), threads.using(n_threads):
        callbacks = [HistoryCallback(run_dir / HISTORY), checkpoint_callback(cfg, run_dir / CHECKPOINT),
                     *trackers]
        if not quiet:
            callbacks.insert(0, ProgressCallback(str(run_dir)))
        with closing_progress(callbacks):  # the bar stops (cursor back) even if training raises
            trainer = fit(model, cfg, data, callbacks, run_dir / CHECKPOINT if resuming else None)
        run = finish(run_dir, cfg, data, trainer.model, trainer.state, device)
        end_trackers(trackers, run)  # figures and final metrics exist only now
    return run


@contextlib.contextmanager
def run_directory(run_dir: Path, cfg: Config, resuming: bool):
    """Hold ``run_dir``'s writer lock while a run trains there, its
    config.yaml written first (a new run).  A failure undoes what the block
    added unless a checkpoint makes it resumable; an interruption keeps it
    once config.yaml exists (``--resume`` starts it from epoch 0)."""
    has_checkpoint = lambda: (run_dir / CHECKPOINT).exists()  # noqa: E731
    resumable = lambda: resuming or (run_dir / CONFIG).exists()  # noqa: E731
    with writing(run_dir, None if resuming else "--out", keep=has_checkpoint, keep_on_interrupt=resumable):
        if not resuming:
            prepare_new(run_dir)  # another command may have finished a run here meanwhile
            write_config(run_dir, cfg)
        yield run_dir


def resolved(cfg: Config, data: Dataset, resuming: bool) -> Config:
    """``cfg`` as the run will record it: the data's label values when they
    had to be mapped, and the thread count ``auto`` chose (a result's last
    bits depend on it, so a resumed run and a rerun of config.yaml use the
    same count; ``--threads`` still wins), and what the model's family
    reads from the data (``Family.resolved``: beta-TCVAE's N)."""
    cfg = record_labels(cfg, data, warn=not resuming)
    model = family(cfg.model.kind).resolved(cfg.model, data)
    if model is not cfg.model:
        cfg = cfg.model_copy(update={"model": model})
    n = threads.resolve(cfg.train.threads)
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": n})})


_warned: set[str] = set()


def _warn_once(message: str | None) -> None:
    """A warning that a study's hundred runs in one process say only once."""
    kind = message.split(":", 1)[0] if message else None
    if message and kind not in _warned:
        _warned.add(kind)
        warnings.warn(message, stacklevel=3)


def record_labels(cfg: Config, data: Dataset, warn: bool = True) -> Config:
    """``cfg`` with ``data.labels`` filled in when the data's labels had to
    be mapped to class indices (e.g. 1..10 -> 0..9), said in one line."""
    if data.classes is None or cfg.data.labels is not None:
        return cfg
    if warn:
        warnings.warn(f"data.labels: the labels are {_describe(data.classes)}, not 0..{len(data.classes) - 1}; "
                      f"class k stands for the k-th of them (recorded as data.labels in config.yaml)",
                      stacklevel=3)
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"labels": data.classes})})


def _describe(values: list[int]) -> str:
    if values == list(range(values[0], values[0] + len(values))):
        return f"{values[0]}..{values[-1]}"
    return str(values) if len(values) <= 12 else f"{values[:12]}..."


# ---------------------------------------------------------------- the model


def build(cfg: Config, data: Dataset, device: torch.device, warn: bool = True) -> torch.nn.Module:
    """The seeded, untrained model for ``cfg`` on ``data`` -- after checking,
    on the meta device, that it fits the data's classes and the memory."""
    check_classes(cfg, data)
    trainer(cfg.train.method).check(cfg)
    check_memory(cfg, data, device)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, data.shape, data.num_classes).to(device)
    message = output_range_warning(cfg.model, data.value_range)
    if message and warn:
        warnings.warn(message, stacklevel=3)
    return model


def check_classes(cfg: Config, data: Dataset) -> None:
    """A family that needs labels gets labelled data, and a declared class
    count covers the data's classes."""
    if family(cfg.model.kind).needs_labels and not data.num_classes:
        raise ModelSpecError(f"model.kind: {cfg.model.kind} needs labelled data; {cfg.data.name} has no labels")
    k = getattr(cfg.model, "num_classes", None)
    if k and data.num_classes and k < data.num_classes:
        raise ModelSpecError(f"model.num_classes: {k}, but the data have {data.num_classes} classes")


def check_memory(cfg: Config, data: Dataset, device: torch.device) -> None:
    """Refuse, in one line with the sizes, a model whose training cannot fit
    in the memory available (parameters, gradients and optimizer state, or
    a GA/ES population), instead of dying in the allocator."""
    try:
        with torch.device("meta"):
            meta = build_model(cfg.model, data.shape, data.num_classes)
    except (RuntimeError, OverflowError, ValueError, TypeError) as e:
        raise ModelSpecError(f"model: cannot be built ({' '.join(str(e).split())[:200]})") from None
    n = count_parameters(meta)
    copies = trainer(cfg.train.method).copies(cfg.train)
    need, have = 4 * n * copies, available_memory(device)
    if have is not None and need > have:
        name, p = max(meta.named_parameters(), key=lambda kv: kv[1].numel())
        raise ModelSpecError(
            f"model: {n:,} parameters need about {_gib(need)} to train ({copies} float32 copies), but "
            f"{device.type} memory has {_gib(have)} available (largest tensor {name}, {tuple(p.shape)})")


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a new allocation on ``device`` (None: unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def tensors(data: Dataset, device) -> tuple:
    """The data set as device tensors: (x_train, y_train, x_val, y_val)."""
    as_t = lambda a, dt=None: None if a is None else torch.as_tensor(a, device=device, dtype=dt)
    return (as_t(data.x_train), as_t(data.y_train, torch.long),
            as_t(data.x_test), as_t(data.y_test, torch.long))


# ------------------------------------------------------------------ training


def fit(model: torch.nn.Module, cfg: Config, data: Dataset, callbacks=(), resume_from: Path | None = None):
    """Train ``model`` on ``data`` with the trainer ``train.method`` names
    (:mod:`aelab.training.registry`), optionally continuing from a
    checkpoint; returns the trainer."""
    method = trainer(cfg.train.method)
    runner = method.make(model, cfg, list(callbacks))
    if resume_from is not None and resume_from.exists():
        _restore(resume_from, lambda p: method.restore(runner, p))
    runner.fit(*tensors(data, runner.device))
    return runner


def _restore(path: Path, restore) -> None:
    """Run ``restore(path)``; a checkpoint that does not fit the run is one line."""
    try:
        restore(path)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise RunDirError(f"{path}: damaged or from another config ({type(e).__name__}: {reason}); "
                          f"delete it to train the run again from epoch 0") from None


def checkpoint_callback(cfg: Config, path: Path):
    """One checkpoint policy for every trainer: every ``train.checkpoint_every``
    epochs (generations) or ``train.checkpoint_seconds`` seconds, whichever is
    set (:class:`~aelab.training.checkpoint.CheckpointPolicy`)."""
    return trainer(cfg.train.method).checkpoint_callback(cfg.train, path)


def training_summary(state: TrainState, model: torch.nn.Module) -> dict:
    """Status and bookkeeping of a finished training (no test metrics)."""
    last = state.history[-1] if state.history else {}
    summary = {"status": state.status, "epochs_trained": state.epoch, "stopped_early": state.stopped_early,
               "best_epoch": state.best_epoch, "train_loss": last.get("train_loss"),
               "val_loss": last.get("val_loss"), "parameters": count_parameters(model),
               "seconds": sum(r.get("seconds", 0.0) for r in state.history), "threads": torch.get_num_threads()}
    if state.status in ("diverged", "collapsed"):
        summary[f"{state.status}_epoch"] = state.epoch
    return summary


def finish(run_dir: Path, cfg: Config, data: Dataset, model, state: TrainState, device) -> Run:
    """Write weights, metrics, figures and report of a trained model."""
    save_model(run_dir, model, data.shape, data.num_classes)
    metrics = training_summary(state, model)
    if state.status in EVALUATED:
        metrics |= evaluate_model(model, cfg, data, device)
    write_json(run_dir / METRICS, metrics)
    figures = _figures(run_dir, cfg, data, model, state, device)
    run = load_run(run_dir)
    write_text(run_dir / REPORT, render_report(run, figures))
    return run


def _figures(run_dir, cfg, data, model, state, device) -> list[str]:
    if not cfg.eval.figures:
        return []
    if state.status not in EVALUATED:  # a diverged model's outputs are NaN: loss curves only
        from . import plots
        return relative([plots.save_loss_curves(state.history, run_dir / FIGURES / "loss_curves.png")], run_dir)
    return relative(run_figures(run_dir / FIGURES, model, data, state.history, device, cfg.eval.seed,
                                state.stages, method=cfg.train.method), run_dir)


# ---------------------------------------------------------------- re-scoring


def evaluate_run(run: Run, figures: bool = True, judge=None) -> dict:
    """Re-score a trained run on its data (rewrites metrics.json, figures,
    report), with ``judge`` in place of ``eval.judge`` when given."""
    cfg = run.config
    if judge is not None:
        cfg = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"judge": str(judge)})})
    with exclusive(run.path, None):
        device = resolve_device(cfg.train.device)
        model = load_model(run.path, device)
        data = load_dataset(cfg.data)
        metrics = dict(run.metrics) | evaluate_model(model, cfg, data, device)
        write_json(run.path / METRICS, metrics)
        figs = relative(run_figures(run.path / FIGURES, model, data, run.history, device, run.config.eval.seed,
                                    method=run.config.train.method),
                        run.path) if figures else []
        write_text(run.path / REPORT, render_report(load_run(run.path), figs))
    return metrics
