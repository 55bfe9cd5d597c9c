"""Targets for LSO: what the classifier's output probabilities should be.

A target is written as a class index (``3`` -> one-hot) or as a probability
vector (``0,0,0,0.5,0,0,0,0,0.5,0`` -> half 3, half 8).  A vector must have
one entry per class, no negative entry, and sum to 1.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .compose import LSOError

SUM_TOL = 1e-6


def parse_target(text: str | int | Sequence[float], num_classes: int, label: str = "--target") -> np.ndarray:
    """One target (a class index or a probability vector) -> ``(K,)`` float64."""
    values = _values(text, label)
    if len(values) == 1 and float(values[0]).is_integer() and not isinstance(text, (list, tuple, np.ndarray)):
        k = int(values[0])
        if not 0 <= k < num_classes:
            raise LSOError(f"{label} {text}: class index out of range, expected 0..{num_classes - 1}")
        return np.eye(num_classes)[k]
    vec = np.asarray(values, dtype=np.float64)
    if len(vec) != num_classes:
        raise LSOError(f"{label} {_show(text)}: has {len(vec)} entries, expected {num_classes} "
                       "(one probability per class) or one class index")
    if (vec < 0).any() or not np.isfinite(vec).all():
        raise LSOError(f"{label} {_show(text)}: probabilities must be finite and >= 0")
    if abs(vec.sum() - 1.0) > SUM_TOL:
        raise LSOError(f"{label} {_show(text)}: sums to {vec.sum():g}, expected a probability vector summing to 1")
    return vec


def _values(text, label: str) -> list[float]:
    if isinstance(text, (int, float, np.integer, np.floating)):
        return [float(text)]
    if isinstance(text, str):
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
    else:
        parts = list(text)
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise LSOError(f"{label} {_show(text)}: expected a class index or comma-separated probabilities") from None
    if not values:
        raise LSOError(f"{label}: empty target")
    return values


def _show(text) -> str:
    return text if isinstance(text, str) else ",".join(f"{float(v):g}" for v in text)


def target_matrix(targets: Iterable, num_classes: int, n: int) -> tuple[np.ndarray, list[str]]:
    """``n`` rows per target, target-major: ``(len(targets) * n, K)`` plus a
    short name per target (``"3"`` or ``"3:0.5+8:0.5"``)."""
    vecs = [parse_target(t, num_classes) for t in targets]
    if not vecs:
        raise LSOError("--target: give at least one target")
    if n < 1:
        raise LSOError(f"--n {n}: expected at least 1 sample per target")
    return np.repeat(np.stack(vecs), n, axis=0), [target_name(v) for v in vecs]


def target_name(vec: np.ndarray) -> str:
    """``"3"`` for a one-hot vector, else ``"3:0.5+8:0.5"``."""
    nz = np.flatnonzero(vec)
    if len(nz) == 1:
        return str(int(nz[0]))
    return "+".join(f"{int(k)}:{vec[k]:g}" for k in nz)


def one_hot_classes(targets: np.ndarray) -> np.ndarray | None:
    """The class of each row when every target is one class (one-hot), else None."""
    t = np.asarray(targets)
    one_hot = np.isclose(t.max(1), 1.0) & np.isclose(t.sum(1), 1.0)
    return t.argmax(1) if len(t) and one_hot.all() else None
