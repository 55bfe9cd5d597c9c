"""The Python API: everything the CLI does, with the same names.

``train`` turns a spec into a finished run directory; ``evaluate`` re-scores
one; ``show`` reads one back; ``sample`` draws from its decoder;
``datasets`` lists the data sets.  Each
function checks what it was given (the spec, the output place, the run
files) before it imports torch: a mistake costs a fraction of a second, and
the work itself lives in :mod:`aelab.pipeline`.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from .errors import ConfigError, RunDirError
from .runs import CHECKPOINT, METRICS, Run, default_run_dir, load_run, prepare_new
from .spec import Config, load_config

# heavy helpers, importable from here as before (aelab.api.build, ...), loaded on first use
_PIPELINE = ("build", "fit", "tensors", "finish", "resolve_device", "training_summary", "checkpoint_callback")


def __getattr__(name: str):
    if name in _PIPELINE:
        return getattr(importlib.import_module(".pipeline", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def datasets():
    """Every known data set with shape, size, source and offline availability."""
    from .data import list_datasets
    return list_datasets()


def train_repeats(config, repeats: int, *, overrides: list[str] | None = None,
                  out: str | Path | None = None) -> dict:
    """``repeats`` seeds of ``config`` (``train.seed`` onwards), trained fused
    when the model stacks, each an ordinary run under ``out/seed-<seed>/``;
    returns mean and spread of every metric (:mod:`aelab.repeats`)."""
    cfg = load_config(config, overrides)
    from .repeats import train_repeats as run
    return run(cfg, repeats, Path(out) if out else default_run_dir(f"{_run_name(config, cfg)}-repeats"))


def _run_name(config, cfg: Config) -> str:
    if cfg.name:
        return cfg.name
    return Path(config).stem if isinstance(config, (str, Path)) else "run"


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
    from .pipeline import train_run
    return train_run(cfg, run_dir, resuming=resume is not None, quiet=quiet)


def evaluate(run_dir: str | Path, *, figures: bool = True, judge: str | Path | None = None) -> dict:
    """Re-score a trained run on its data (rewrites metrics.json, figures,
    report); ``judge``: a classifier run whose features and verdicts score a
    generative run's samples (:mod:`aelab.generation`), else ``eval.judge``."""
    run = load_run(run_dir)
    if judge is not None:
        from .models.family import GENERATIVE, family
        if not family(run.config.model.kind).has(GENERATIVE):
            raise RunDirError(f"--judge: {run.path} is a '{run.config.model.kind}' run, which does not generate; "
                              f"the judge scores generated samples")
        if not Path(judge).is_dir():
            raise RunDirError(f"--judge {judge}: not a run directory")
    if run.status == "diverged":
        raise RunDirError(f"{run.path}: the run diverged; there is nothing meaningful to evaluate")
    if not run.has_model:
        raise RunDirError(f"{run.path}: has no trained model yet (model.json missing); "
                          f"finish it with aelab train --resume {run.path}")
    from .pipeline import evaluate_run
    return evaluate_run(run, figures, judge)


def show(run_dir: str | Path) -> Run:
    """Read a run directory back (config, metrics, history, model info)."""
    run = load_run(run_dir)
    if not (run.path / METRICS).exists() and not (run.path / CHECKPOINT).exists():
        print(f"note: {run.path} has not finished an epoch yet", file=sys.stderr)
    return run


def sample(run_dir: str | Path, sampler: str | None = None, *, n: int = 64, out: str | Path | None = None,
           seed: int = 0, components: int | None = None, classes=None, options: dict | None = None) -> dict:
    """``n`` samples of a run's decoder, from codes the sampler draws
    (``prior``, ``gaussian``, ``gmm``, or a registered one:
    :mod:`aelab.samplers`), written to ``out`` (default ``RUN/samples-<sampler>/``:
    samples.npz, grid.png, sampler.json); returns sampler.json's content and ``path``."""
    from .samplers.run import sample_run
    return sample_run(run_dir, sampler, n=n, out=out, seed=seed, components=components, classes=classes,
                      options=options)
