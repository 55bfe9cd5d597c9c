"""Many run directories trained at once: fused where their models stack.

``train_jobs(jobs)`` is :func:`aelab.pipeline.train_run` for a list of run
directories (new ones and interrupted ones to resume).  Jobs whose models
stack -- same data, same architecture (parameter shapes and layers), same
batch size, loss and device; seeds, optimizers and their hyperparameters,
schedules, epochs, early stopping, dropout rates, beta and KL warm-up may
differ -- are trained as fused groups (:class:`~aelab.training.fused.FusedGradientTrainer`),
each no larger than memory allows (:func:`group_size`).  Every member's run
directory fills as its solo run's does: config.yaml first, history.csv after
each epoch, a checkpoint on the run's own policy, then model, metrics,
figures and report.  So a group killed at any moment leaves ordinary
interrupted runs, and resuming them (fused again, or one by one with
``aelab train --resume``) ends where the uninterrupted group ends.

What does not stack (families that do not declare a fused objective --
adversarial, regularized, the conditional GAN --, GA/ES, a group of one) trains one run after another
through the solo pipeline, with one warning line saying why when fusing was
expected.
"""
from __future__ import annotations

import functools
import json
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch

from . import threads
from .data import Dataset, load_dataset
from .pipeline import (available_memory, build, checkpoint_callback, finish, resolve_device, run_directory,
                       tensors, train_run)
from .runs import CHECKPOINT, HISTORY, Run
from .spec import Config, DataSpec
from .training.callbacks import HistoryCallback
from .training.registry import trainer
from .training.trackers import end_trackers, make_trackers

MAX_GROUP = {"cpu": 64}  # members per group on the CPU (arithmetic-bound beyond); elsewhere memory decides
# Parameters per model above which runs do not fuse on the CPU: there a solo
# step is already bound by arithmetic and memory, and the stacked one only
# adds work.  Measured (benchmarks/fused_speed.py, one thread, this 2-vCPU
# VM): mnist-hidden3 with 32 / 64 / 128 first-layer units (52k / 103k / 203k
# parameters) 1.6x / 1.4x / 1.2x fused; the 784-256-8 zoo networks (mnist-vae,
# mnist-wae: ~400k) 0.84-1.0x.  On CUDA, where a small step is launch-bound, no limit.
CPU_MAX_PARAMETERS = 250_000
MEMORY_SHARE = 0.5  # of the memory available, what one group may plan to use


@dataclass(frozen=True)
class Job:
    """One run directory to train: ``cfg`` resolved (:func:`aelab.pipeline.resolved`)
    for a new run, its own config.yaml's for one being resumed."""

    cfg: Config
    run_dir: Path
    resuming: bool = False


def train_jobs(jobs: list[Job], *, fuse: bool = True) -> tuple[list[Run], int]:
    """Train every job; returns their runs in the order given and how many
    of them were trained fused.  A group that fails raises its error after
    the other groups have trained (so a caller retrying job by job finds
    them finished)."""
    runs: dict[Path, Run] = {}
    fused, failed = 0, []
    for group in groups(jobs) if fuse else [[j] for j in jobs]:
        try:  # one group failing does not keep the others from training
            trained = _fused(group) if len(group) > 1 else None
            fused += len(trained or [])
            for job, run in zip(group, trained or [_solo(j) for j in group]):
                runs[job.run_dir] = run
        except Exception as e:  # noqa: BLE001 -- raised below, once the other groups are done
            failed.append(e)
    if failed:
        raise failed[0]
    return [runs[j.run_dir] for j in jobs], fused


def _solo(job: Job) -> Run:
    return train_run(job.cfg, job.run_dir, resuming=job.resuming)


# -------------------------------------------------------------- grouping


def groups(jobs: list[Job]) -> list[list[Job]]:
    """Jobs that may stack, in groups that fit memory (order kept); a job
    whose model or trainer cannot stack is a group of its own."""
    by_key: dict[str, list[Job]] = {}
    alone = []
    for job in jobs:
        key = stack_key(job.cfg)
        if key is None:
            alone.append([job])
        else:
            by_key.setdefault(key, []).append(job)
    out = []
    for members in by_key.values():
        size = group_size(members[0].cfg) if len(members) > 1 else 1
        n = cpu_parameters(members[0].cfg) if size > 1 else 0
        if n > CPU_MAX_PARAMETERS:
            warnings.warn(f"{len(members)} runs trained one after another, not fused: {n:,} parameters per "
                          f"model, and on the CPU fusing pays only up to {CPU_MAX_PARAMETERS:,} "
                          f"(aelab.fused_runs.CPU_MAX_PARAMETERS)", stacklevel=3)
            size = 1
        out += [members[i:i + size] for i in range(0, len(members), size)]
    return out + alone


def cpu_parameters(cfg: Config) -> int:
    """The model's parameter count (built on the meta device) for a CPU run; 0 elsewhere."""
    if resolve_device(cfg.train.device).type != "cpu":
        return 0
    return sum(p.numel() for p in _meta_model(cfg).parameters())


def stack_key(cfg: Config) -> str | None:
    """What members of one group must share: the data, the gradient
    trainer's batch size and loss, the device, and the model's architecture
    -- its parameter names and shapes and its layers (built on the meta
    device: no memory, no time), dropout rates aside.  None when the
    trainer, the family's objective or the model's module is not one fused
    training covers."""
    from .models.family import family
    from .training.fused.stack import architecture
    if not trainer(cfg.train.method).fuses or family(cfg.model.kind).fused_objective() is None:
        return None
    try:
        arch = architecture(_meta_model(cfg))
    except Exception:  # noqa: BLE001 -- a model that cannot be built: its solo run says why, in one line
        return None
    if arch is None:
        return None
    t = cfg.train
    return json.dumps([cfg.data.model_dump(mode="json"), t.batch_size, t.loss, t.device, arch],
                      sort_keys=True, default=str)


def _meta_model(cfg: Config) -> torch.nn.Module:
    from .models.build import build_model
    shape, classes = _shape(cfg.data.model_dump_json())
    with torch.device("meta"):
        return build_model(cfg.model, shape, classes)


@functools.lru_cache(maxsize=8)
def _shape(data_json: str) -> tuple[tuple[int, ...], int | None]:
    data = load_dataset(DataSpec.model_validate_json(data_json))
    return tuple(data.shape), data.num_classes


def group_size(cfg: Config) -> int:
    """Members per group: what :data:`MEMORY_SHARE` of the device's free
    memory holds -- each member's parameters in the trainer's copies plus
    the stacked one, and its activations and their gradients for one
    minibatch -- capped on the CPU by :data:`MAX_GROUP`."""
    model = _meta_model(cfg)
    device = resolve_device(cfg.train.device)
    n = sum(p.numel() for p in model.parameters())
    widths = sum(p.shape[0] for p in model.parameters() if p.dim() == 2)
    per_member = 4 * (n * (trainer(cfg.train.method).copies(cfg.train) + 1)
                      + 3 * getattr(cfg.train, "batch_size", 1) * widths)
    have = available_memory(device)
    fits = int(MEMORY_SHARE * have // max(per_member, 1)) if have is not None else 1
    return max(1, min(fits, MAX_GROUP.get(device.type, 1024)))


# ------------------------------------------------------------ one group


def _fused(group: list[Job]) -> list[Run] | None:
    """Train ``group`` as one fused model into its run directories; None
    (nothing written) when it does not stack after all."""
    data = load_dataset(group[0].cfg.data)
    device = resolve_device(group[0].cfg.train.device)
    try:
        trackers = [make_trackers(j.cfg, j.run_dir) for j in group]
        callbacks = [[HistoryCallback(j.run_dir / HISTORY), checkpoint_callback(j.cfg, j.run_dir / CHECKPOINT), *t]
                     for j, t in zip(group, trackers)]
        restore = [j.run_dir / CHECKPOINT if j.resuming and (j.run_dir / CHECKPOINT).exists() else None
                   for j in group]
        fused = fused_group([j.cfg for j in group], data, device, callbacks=callbacks, restore=restore)
    except ValueError as e:
        warnings.warn(f"{len(group)} runs trained one after another, not fused "
                      f"({' '.join(str(e).split())[:200]})", stacklevel=3)
        return None
    except (KeyError, TypeError, RuntimeError, IndexError, AttributeError):
        return None  # a damaged checkpoint: the solo resume names it in one line
    return _train(fused, group, data, device, trackers)


def _train(fused, group: list[Job], data: Dataset, device, trackers) -> list[Run]:
    with ExitStack() as stack:
        for job in group:
            stack.enter_context(run_directory(job.run_dir, job.cfg, job.resuming))
        stack.enter_context(threads.using(group[0].cfg.train.threads))
        fused.fit(*tensors(data, device))
        runs = []
        for job, member, tracks in zip(group, fused.members(), trackers):
            runs.append(finish(job.run_dir, job.cfg, data, member.model, member.state, device))
            end_trackers(tracks, runs[-1])
    return runs


def fused_group(cfgs: list[Config], data: Dataset, device=None, **kwargs):
    """A :class:`~aelab.training.fused.FusedGradientTrainer` of the models of
    ``cfgs``, each built as its solo run builds it (:func:`aelab.pipeline.build`:
    checks, then ``torch.manual_seed(seed)``); a ValueError when they do not stack."""
    from .training.fused import FusedGradientTrainer
    device = device or resolve_device(cfgs[0].train.device)
    models = [build(c, data, device, warn=False) for c in cfgs]
    return FusedGradientTrainer(models, [c.train for c in cfgs], [c.model for c in cfgs], **kwargs)
