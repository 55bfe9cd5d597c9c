"""Turn raw images into train/test arrays, following a :class:`DataSpec`.

Order (each step sees the output of the previous one):

1. ``samples``   stratified subset drawn with ``seed``
2. split         official train/test files, or sklearn ``train_test_split``
3. ``resize``    bilinear with antialiasing (torch)
4. ``normalize`` ``unit`` / ``standardize`` (training statistics) / ``none``
5. ``range``     linear map into [lo, hi]

Statistics always come from the training split only, so nothing about the
test images leaks into how the training images are scaled.  The result is
float32, channels-first, and a pure function of the spec.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from ..errors import DataError
from ..spec import DataSpec

RESIZE_CHUNK = 8192  # images resized per torch call, to bound peak memory


@dataclass
class RawData:
    """Images as a source delivered them, before any preprocessing.

    ``x`` is (N, C, H, W) in its original dtype.  ``x_test``/``y_test`` hold
    an official test split when the source has one (then ``test_size`` is
    ignored).  ``scale`` is the raw value that ``unit`` maps to 1.0; ``None``
    means: infer it from the training split (see :func:`infer_scale`).
    ``factors`` is the (N, F) matrix of ground-truth factor indices of a
    generated set (``shapes``), which follows the images through the subset
    and the split (:func:`positions`); only for sets without an official split.
    """

    x: np.ndarray
    y: np.ndarray | None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    scale: float | None = None
    factors: np.ndarray | None = None


Arrays = tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]


# ------------------------------------------------------------- 1. samples


def allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """How many of ``n`` draws each class gets: at least one per class, the
    rest proportional to class size (largest remainder), never more than the
    class holds.  Needs ``len(counts) <= n <= counts.sum()``."""
    quota = n * counts / counts.sum()
    alloc = np.minimum(np.maximum(1, np.floor(quota)).astype(np.int64), counts)
    while alloc.sum() < n:
        room = np.where(alloc < counts, quota - alloc, -np.inf)
        alloc[int(np.argmax(room))] += 1
    while alloc.sum() > n:
        spare = np.where(alloc > 1, quota - alloc, np.inf)
        alloc[int(np.argmin(spare))] -= 1
    return alloc


def subset_indices(y: np.ndarray | None, n_total: int, samples: int, seed: int) -> np.ndarray:
    """Sorted indices of a ``samples``-sized subset drawn with ``seed``:
    stratified by ``y`` when there are labels and at least one draw per
    class is possible, a plain random subset otherwise."""
    if samples > n_total:
        raise DataError(f"data.samples is {samples} but only {n_total} images are available")
    rng = np.random.default_rng(seed)
    if y is None:
        return np.sort(rng.choice(n_total, samples, replace=False))
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if samples < len(classes):
        return np.sort(rng.choice(n_total, samples, replace=False))
    picks = []
    for k, take in enumerate(allocate(counts, samples)):
        members = np.flatnonzero(inverse == k)
        picks.append(rng.permutation(members)[:take])
    return np.sort(np.concatenate(picks))


def subsample(x: np.ndarray, y: np.ndarray | None, samples: int | None, seed: int):
    """``x``, ``y`` reduced to ``samples`` images (unchanged when ``None``)."""
    if samples is None:
        return x, y
    idx = subset_indices(y, len(x), samples, seed)
    return x[idx], (None if y is None else y[idx])


# --------------------------------------------------------------- 2. split


def split(x: np.ndarray, y: np.ndarray | None, test_size: float, seed: int) -> Arrays:
    """Train/test split exactly as ``train_test_split(x, y, test_size=...,
    random_state=seed)`` (unstratified); ``test_size == 0`` gives empty test
    arrays with the right trailing shape."""
    if test_size == 0:
        return x, y, x[:0], (None if y is None else y[:0])
    try:
        tr, te = train_test_split(np.arange(len(x)), test_size=test_size, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot split {len(x)} images with data.test_size={test_size}: {e}") from None
    return x[tr], (None if y is None else y[tr]), x[te], (None if y is None else y[te])


# -------------------------------------------------------------- 3. resize


def resize(x: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """(N, C, H, W) float32 images resized to ``size`` (H, W), bilinear with
    antialiasing so downsampling averages instead of aliasing."""
    if size is None or tuple(x.shape[2:]) == tuple(size):
        return x
    out = np.empty((len(x), x.shape[1], *size), dtype=np.float32)
    for start in range(0, len(x), RESIZE_CHUNK):
        part = torch.from_numpy(np.ascontiguousarray(x[start:start + RESIZE_CHUNK]))
        scaled = F.interpolate(part, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + RESIZE_CHUNK] = scaled.numpy()
    return out


# ----------------------------------------------------------- 4. normalize


def infer_scale(x_train: np.ndarray) -> float:
    """The value ``unit`` divides by for a user file: 255 for uint8, else the
    training maximum when it exceeds 1, else 1 (already in unit range)."""
    if x_train.dtype == np.uint8:
        return 255.0
    top = float(x_train.max()) if x_train.size else 1.0
    return top if top > 1.0 else 1.0


def normalize(x_train: np.ndarray, x_test: np.ndarray, mode: str, scale: float):
    """Apply ``unit`` (divide by ``scale``), ``standardize`` (per-feature
    mean/std of the training split, std 0 treated as 1) or ``none``."""
    if mode == "unit":
        return x_train / np.float32(scale), x_test / np.float32(scale)
    if mode == "standardize":
        mean = x_train.mean(axis=0, dtype=np.float64)
        std = x_train.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
    return x_train, x_test


# --------------------------------------------------------------- 5. range


def to_range(x_train: np.ndarray, x_test: np.ndarray, bounds, unit: bool):
    """Map into [lo, hi]: the unit interval after ``unit`` normalization,
    otherwise the training min..max (a constant training set maps to lo)."""
    if bounds is None:
        return x_train, x_test
    lo, hi = float(bounds[0]), float(bounds[1])
    if unit:
        src_lo, width = 0.0, 1.0
    else:
        src_lo, src_hi = float(x_train.min()), float(x_train.max())
        width = (src_hi - src_lo) or 1.0
    gain = (hi - lo) / width

    def scaled(x: np.ndarray) -> np.ndarray:
        return ((x - src_lo) * gain + lo).astype(np.float32)

    return scaled(x_train), scaled(x_test)


# ---------------------------------------------------------------- driver


def positions(raw: RawData, spec: DataSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """Which images of ``raw.x`` steps 1 and 2 keep: the positions of the
    training images, and of the test images (``None``: the official test
    file, whole).  Indexing ``raw.x`` (or ``raw.factors``) with them gives
    exactly the arrays :func:`subsample` and :func:`split` would."""
    pos, _ = subsample(np.arange(len(raw.x)), raw.y, spec.samples, spec.seed)
    if raw.x_test is not None:
        return pos, None
    y = None if raw.y is None else raw.y[pos]
    tr, _, te, _ = split(pos, y, spec.test_size, spec.seed)
    return tr, te


def prepare(raw: RawData, spec: DataSpec) -> Arrays:
    """Run the whole pipeline on ``raw``; returns x_train, y_train, x_test, y_test."""
    if len(raw.x) == 0:
        raise DataError("the data set holds no images")
    tr, te = positions(raw, spec)
    x_tr, y_tr = raw.x[tr], (None if raw.y is None else raw.y[tr])
    if te is None:
        x_te, y_te = raw.x_test, raw.y_test
    else:
        x_te, y_te = raw.x[te], (None if raw.y is None else raw.y[te])
    scale = raw.scale if raw.scale is not None else infer_scale(x_tr)
    x_tr = resize(x_tr.astype(np.float32), spec.resize)
    x_te = resize(x_te.astype(np.float32), spec.resize)
    x_tr, x_te = normalize(x_tr, x_te, spec.normalize, scale)
    x_tr, x_te = to_range(x_tr, x_te, spec.range, spec.normalize == "unit")
    return (np.ascontiguousarray(x_tr, dtype=np.float32), _labels(y_tr),
            np.ascontiguousarray(x_te, dtype=np.float32), _labels(y_te))


def _labels(y: np.ndarray | None) -> np.ndarray | None:
    """Labels as a fresh int64 array (None stays None)."""
    return None if y is None else np.array(y, dtype=np.int64)
