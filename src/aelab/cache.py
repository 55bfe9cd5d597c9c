"""Runs cached by config: train a config once, read it back ever after.

Studies and LSO studies both need "the finished run of this config": read
back when done, resumed when interrupted, trained otherwise.  A run's place
is ``RUNS_DIR/[<name>-]<hash of the resolved config>``; processes that reach
the same config take turns through a file lock, so none is trained twice.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack
from pathlib import Path

from .outdir import file_lock
from .runs import CONFIG, METRICS, Run, load_run
from .spec import LEGACY_MODEL_DEFAULTS, LEGACY_TRAIN_DEFAULTS, Config

# Fields that change how a run is executed or logged, not what it computes:
# two configs differing only there are the same experiment (and share a
# cached run).  Threads can change the last bits of float sums, not the model.
NOT_HASHED = {"train": {"threads", "checkpoint_every", "checkpoint_seconds"}, "track": True}


def config_hash(cfg: Config) -> str:
    """Stable identity of a fully resolved config (logging settings left out).
    Hashed in the layout of the first versions -- one flat ``model`` and
    ``train`` section with every field, ``data.labels`` only when set -- so
    the cached runs of studies started then are still found."""
    dump = cfg.model_dump(mode="json", exclude=NOT_HASHED)
    if dump["data"].get("labels") is None:
        dump["data"].pop("labels", None)
    if dump["eval"].get("judge") is None:  # added later: unset, the hash is the one it always was
        dump["eval"].pop("judge", None)
    dump["model"] = LEGACY_MODEL_DEFAULTS | dump["model"]
    dump["train"] = LEGACY_TRAIN_DEFAULTS | dump["train"]
    return hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()[:16]


def cached_run(cfg: Config, runs_dir: Path, name: str | None = None) -> Run:
    """The finished run of ``cfg`` under ``runs_dir``: read back, resumed, or trained afresh."""
    from . import api
    digest = config_hash(cfg)
    run_dir = runs_dir / (f"{name}-{digest}" if name else digest)
    with file_lock(runs_dir / f".{run_dir.name}.lock"):
        if (run_dir / METRICS).exists():
            return load_run(run_dir)
        if (run_dir / CONFIG).exists():
            return api.train(resume=run_dir)
        return api.train(cfg, out=run_dir)


def cached_runs(cfgs: list[Config], runs_dir: Path, *, fuse: bool = True) -> list[Run]:
    """:func:`cached_run` for many configs at once: those not finished yet
    are trained together (:func:`aelab.fused_runs.train_jobs`: fused where
    their models stack), interrupted ones resumed with them.  The runs'
    locks are taken in one order, so processes asking for overlapping sets
    take turns instead of deadlocking."""
    from .data import load_dataset
    from .fused_runs import Job, train_jobs
    from .pipeline import resolved
    dirs = [runs_dir / config_hash(c) for c in cfgs]
    todo: dict[Path, Config] = dict(sorted(zip(dirs, cfgs)))
    data: dict[str, object] = {}  # one load per data set, not per run
    with ExitStack() as locks:
        for run_dir in todo:
            locks.enter_context(file_lock(runs_dir / f".{run_dir.name}.lock"))
        jobs = []
        for run_dir, cfg in todo.items():
            if (run_dir / METRICS).exists():
                continue
            if (run_dir / CONFIG).exists():
                jobs.append(Job(load_run(run_dir).config, run_dir, resuming=True))
            else:
                key = cfg.data.model_dump_json()
                data[key] = data.get(key) or load_dataset(cfg.data)
                jobs.append(Job(resolved(cfg, data[key], resuming=False), run_dir))
        train_jobs(jobs, fuse=fuse)
        return [load_run(d) for d in dirs]
