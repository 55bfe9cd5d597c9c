"""What ``aelab lso`` writes: ``samples.npz``, ``summary.json``, the grid and
the latent-walk strip.  Every file is written atomically."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .. import plots
from ..atomic import write_bytes
from ..runs import write_json
from .loop import LSOResult, lso_steps

SAMPLES, SUMMARY, GRID, WALK = "samples.npz", "summary.json", "grid.png", "walk.png"


def save_samples(path: Path, result: LSOResult) -> Path:
    """``images``, ``targets``, ``success``, ``steps``, ``latents`` (+ the rest of the result)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, images=result.images, targets=result.targets, success=result.success,
                        steps=result.steps, latents=result.latents, start_latents=result.start_latents,
                        probs=result.probs, error=result.error, restarts=result.restarts,
                        total_steps=result.total_steps)
    write_bytes(path, buf.getvalue())
    return path


def save_summary(path: Path, summary: dict) -> Path:
    write_json(path, summary)
    return path


def grid_rows(name: str, result: LSOResult, names: Sequence[str], per_target: int = 1) -> list[tuple[str, np.ndarray]]:
    """Rows of one method for the grid: row ``i`` holds the ``i``-th sample of
    every target (successful samples first), one column per target."""
    rows = []
    groups = [np.flatnonzero(np.all(result.targets == t, axis=1)) for t in distinct_targets(result.targets)]
    ordered = [g[np.argsort(~result.success[g], kind="stable")] for g in groups]
    for i in range(min(per_target, min(len(g) for g in ordered))):
        label = name if per_target == 1 else f"{name} #{i + 1}"
        rows.append((label, np.stack([result.images[g[i]] for g in ordered])))
    return rows


def distinct_targets(targets: np.ndarray) -> np.ndarray:
    _, first = np.unique(targets, axis=0, return_index=True)
    return targets[np.sort(first)]


def save_grid(path: Path, rows: list[tuple[str, np.ndarray]], names: Sequence[str], title: str) -> Path:
    """Rows: methods; columns: the targets."""
    return plots.save_reconstruction_rows(rows, path, title=title, col_labels=list(names), vmin=0.0, vmax=1.0)


def walk_data(model, start: np.ndarray, targets: np.ndarray, steps: np.ndarray,
              make_optimizer: Callable, regularizer, frames: int = 8) -> tuple[np.ndarray, list[int]]:
    """Images along the optimization path of each start (rows) at ``frames``
    evenly spaced steps up to its recorded step count: (R, frames, C, H, W).
    The path is replayed with :func:`lso_steps` from the stored start (rows
    are independent, so the replay is the path the batch took)."""
    last = int(max(1, steps.max()))
    marks = sorted({int(round(x)) for x in np.linspace(0, last, frames)})
    out = np.zeros((len(start), len(marks), *model.image_shape), np.float32)
    walk = lso_steps(model, torch.as_tensor(start), torch.as_tensor(targets, dtype=torch.float32),
                     make_optimizer(), regularizer, steps=last)
    for state in walk:
        for j, m in enumerate(marks):
            # a row that stopped early keeps showing its final image
            hit = (np.minimum(m, steps) == state.step)
            out[hit, j] = state.images.numpy()[hit]
    return out, marks


def save_walk(path: Path, images: np.ndarray, marks: list[int], names: Sequence[str], title: str) -> Path:
    """One row per target: the decoded image at evenly spaced steps."""
    rows = [(f"target {n}", images[i]) for i, n in enumerate(names)]
    return plots.save_reconstruction_rows(rows, path, title=title, col_labels=[f"step {m}" for m in marks],
                                          vmin=0.0, vmax=1.0)
