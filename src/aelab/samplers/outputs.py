"""What ``aelab sample`` writes, each file atomically:

* ``samples.npz``: ``images`` (n, C, H, W) float32, ``codes`` (n, latent)
  float32, ``classes`` (n,) int64 for a conditional model, ``sampler``,
  ``options`` (JSON text) and ``seed`` -- plain arrays, loadable without pickle;
* ``grid.png``: the first :data:`GRID_MAX` images in a square-ish grid
  (captioned with their class for a conditional model);
* ``sampler.json``: the sampler, its options, seed, n, what was fitted, the
  source run.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from ..runs import write_json
from .request import GRID, INFO, SAMPLES

GRID_MAX = 256  # a 16 x 16 grid at most; the npz holds every sample


def save_samples(path: Path, images: np.ndarray, codes: np.ndarray, classes: np.ndarray | None,
                 info: dict) -> Path:
    arrays = {"images": images.astype(np.float32), "codes": codes.astype(np.float32),
              "sampler": np.array(info["sampler"]), "options": np.array(json.dumps(info["options"])),
              "seed": np.array(info["seed"], dtype=np.int64)}
    if classes is not None:
        arrays["classes"] = classes.astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())
    return path


def save_grid(path: Path, images: np.ndarray, classes: np.ndarray | None, title: str) -> Path:
    from .. import plots
    shown = images[:GRID_MAX]
    if len(images) > GRID_MAX:
        title += f" (the first {GRID_MAX} of {len(images)})"
    labels = None if classes is None else [int(c) for c in classes[:GRID_MAX]]
    return plots.save_image_grid(shown, path, ncols=math.ceil(math.sqrt(len(shown))), title=title, labels=labels)


def write_all(out: Path, images: np.ndarray, codes: np.ndarray, classes: np.ndarray | None, info: dict) -> None:
    """The npz, the grid, then sampler.json (the file that says the folder is complete)."""
    save_samples(out / SAMPLES, images, codes, classes, info)
    save_grid(out / GRID, images, classes, grid_title(info))
    write_json(out / INFO, info)


def grid_title(info: dict) -> str:
    options = ", ".join(f"{k} {v}" for k, v in info["options"].items())
    return f"{info['n']} samples, {info['sampler']} sampler" + (f" ({options})" if options else "") + \
        f", seed {info['seed']}"
