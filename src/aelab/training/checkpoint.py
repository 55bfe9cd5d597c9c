"""Resumable checkpoints as ONE safetensors file: nothing is ever unpickled.

Tensors (model weights, optimizer state, best weights, RNG state) are stored
under prefixed names; everything else (epoch, history, early-stopping state,
optimizer hyperparameters, scheduler state) goes into the file's JSON
metadata.  The file is written to a temporary name, flushed to disk and
renamed, so a run killed mid-write (or a machine that loses power) still has
its previous checkpoint intact.

:class:`CheckpointPolicy` says *when* a run writes it, the same way for
every trainer.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..atomic import atomic_path
from ..errors import RunDirError
from .gradient import GradientTrainer, TrainState

FORMAT = "aelab-checkpoint-1"


def _tensors(prefix: str, d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v for k, v in d.items()}  # save_tensors_and_state copies them


def _split_optimizer(sd: dict, prefix: str = "optim.") -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state_dict -> (tensors, JSON-able structure)."""
    tensors, state = {}, {}
    for pid, entries in sd["state"].items():
        state[str(pid)] = {}
        for k, v in entries.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}{pid}.{k}"] = v
                state[str(pid)][k] = {"tensor": f"{prefix}{pid}.{k}"}
            else:
                state[str(pid)][k] = v
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def _join_optimizer(meta: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state = {int(pid): {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v
                        for k, v in entries.items()}
             for pid, entries in meta["state"].items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: str | Path, trainer: GradientTrainer) -> None:
    """Write the trainer's full resumable state to ``path`` atomically."""
    s = trainer.state
    tensors = _tensors("model.", trainer.model.state_dict())
    opt_tensors, opt_meta = _split_optimizer(trainer.optimizer.state_dict())
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if s.best_weights is not None:
        tensors.update(_tensors("best.", s.best_weights))
    meta = {
        "format": FORMAT, "epoch": s.epoch, "history": s.history, "best_val": s.best_val,
        "best_epoch": s.best_epoch, "bad_epochs": s.bad_epochs, "status": s.status,
        "stopped_early": s.stopped_early, "optimizer": opt_meta,
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
    }
    save_tensors_and_state(path, tensors, meta)


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a gradient checkpoint; one clear line if unreadable."""
    tensors, meta = read_tensors_and_state(path)
    if meta.get("format") != FORMAT:
        raise RunDirError(f"{path}: not an aelab checkpoint (format {meta.get('format')!r})")
    return tensors, meta


def restore_checkpoint(path: str | Path, trainer: GradientTrainer) -> None:
    """Load a checkpoint written by :func:`save_checkpoint` into ``trainer``."""
    tensors, meta = read_checkpoint(path)
    pick = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    trainer.model.load_state_dict({k: v.to(trainer.device) for k, v in pick("model.").items()})
    trainer.optimizer.load_state_dict(_join_optimizer(meta["optimizer"], tensors))
    if trainer.scheduler is not None and meta.get("scheduler") is not None:
        trainer.scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    best = pick("best.")
    trainer.state = TrainState(
        epoch=meta["epoch"], history=meta["history"], best_val=meta["best_val"],
        best_epoch=meta["best_epoch"], bad_epochs=meta["bad_epochs"], status=meta["status"],
        stopped_early=meta["stopped_early"],
        best_weights={k: v.to(trainer.device) for k, v in best.items()} or None)


def save_tensors_and_state(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """One safetensors file: ``tensors`` plus ``meta`` as JSON metadata,
    atomically and durably (a checkpoint is the only copy of a run's progress)."""
    clean = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path, durable=True) as tmp:
        save_file(clean, str(tmp), metadata={"aelab": json.dumps(meta)})


def read_tensors_and_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Inverse of :func:`save_tensors_and_state`; one clear line if unreadable."""
    p = Path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get("aelab")
        return load_file(str(p)), json.loads(raw) if raw else {}
    except (SafetensorError, OSError, ValueError) as e:
        raise RunDirError(f"{p}: not a readable checkpoint ({e})") from None


# ------------------------------------------------------------------ when


class CheckpointPolicy:
    """When a run writes its checkpoint: one rule for every trainer.

    Asked after every epoch (gradient descent) or history record (GA/ES,
    every ``log_every`` generations), it says a checkpoint is due when

    * ``every`` is set and at least ``every`` epochs (generations) have
      passed since the last checkpoint, or
    * ``seconds`` is set and at least ``seconds`` have passed since the last
      checkpoint was written -- a run with none on disk yet counts as
      infinitely long ago, so its first epoch is checkpointed;

    whichever is set, whichever comes first when both are.  The trainer's
    callback also writes one when training ends.  Each setting bounds the work
    a kill can cost (a resumed run replays the epochs since the checkpoint,
    bit for bit, since every epoch is seeded from ``(train.seed, epoch)``),
    and ``seconds`` bounds what checkpointing costs: with a write taking
    ``c`` seconds, at most ``c / (seconds + c)`` of the run (the clock
    restarts when a write ends).
    """

    def __init__(self, every: int | None = None, seconds: float | None = None, clock=time.perf_counter):
        self.every, self.seconds, self.clock = every, seconds, clock
        self.start(0)

    def start(self, done: int) -> None:
        """Training (re)starts with ``done`` epochs completed; a resumed run
        (``done > 0``) starts from the checkpoint it was restored from."""
        self.last_done, self.last_time = done, self.clock() if done > 0 else -math.inf

    def due(self, done: int) -> bool:
        """Whether to write a checkpoint now that ``done`` epochs are complete."""
        if self.every is not None and done - self.last_done >= self.every:
            return True
        return self.seconds is not None and self.clock() - self.last_time >= self.seconds

    def saved(self, done: int) -> None:
        """A checkpoint holding ``done`` epochs has just been written."""
        self.last_done, self.last_time = done, self.clock()
