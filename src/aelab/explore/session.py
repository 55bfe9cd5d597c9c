"""What the explorer serves, computed once from a run directory.

The test split's latent codes (the deterministic ``embed``: ``mu`` for a VAE)
and, above two dimensions, a PCA plane fitted on them; a decoder that turns a
batch of full latent codes into display-ready 8-bit images.  Only these
in-memory arrays ever reach the web page: nothing is read from disk after
start-up.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

from ..data import Dataset, load_dataset
from ..errors import RunDirError
from ..evaluation import eval_split, predict
from ..models.family import CONDITIONAL, DECODE, EMBED, capabilities_of, conditioned, families, family
from ..runs import load_model, load_run

MAX_POINTS = 2000  # scatter points sent to the page (a fixed-seed subsample above this)


@dataclass
class Plane:
    """The 2-D plane the scatter shows: ``p = components @ (z - mean)``.

    For a 2-D latent space it is the identity (``mean`` 0, ``components`` I)."""

    kind: str               # "identity" | "pca"
    mean: np.ndarray        # (D,)
    components: np.ndarray  # (2, D), orthonormal rows
    explained: list[float]  # variance ratio per axis ([] for identity)

    def project(self, z: np.ndarray) -> np.ndarray:  # (N, D) -> (N, 2)
        return (z - self.mean) @ self.components.T


def fit_plane(codes: np.ndarray) -> Plane:
    """Identity for 2-D codes; PCA fitted on the codes above that."""
    d = codes.shape[1]
    if d == 2:
        return Plane("identity", np.zeros(2), np.eye(2), [])
    if d < 2:
        raise RunDirError(f"explore: needs a latent space of at least 2 dimensions, this one has {d}")
    pca = PCA(n_components=2, random_state=0).fit(codes)
    return Plane("pca", pca.mean_, pca.components_, [float(v) for v in pca.explained_variance_ratio_])


@dataclass
class Session:
    """A loaded run: model, test codes, plane, display range."""

    name: str
    model: torch.nn.Module
    shape: tuple[int, int, int]       # (C, H, W)
    codes: np.ndarray                 # (N, D) test codes
    labels: np.ndarray | None         # (N,)
    plane: Plane
    value_range: tuple[float, float]  # data range mapped to 0..255 for display
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def latent_dim(self) -> int:
        return int(self.codes.shape[1])

    @property
    def conditional(self) -> bool:
        """The model decodes a code as a chosen class (the page offers the classes)."""
        return CONDITIONAL in capabilities_of(self.model)

    @property
    def num_classes(self) -> int:
        return int(getattr(self.model, "num_classes", 0) or 0)

    @torch.no_grad()
    def decode(self, z: np.ndarray, label: int | None = None) -> np.ndarray:
        """Full codes (B, D) -> 8-bit images (B, H, W, C), in one forward pass
        (a conditional model decodes them as class ``label``)."""
        z = torch.as_tensor(z, dtype=torch.float32)
        cond = conditioned(self.model, torch.full((len(z),), label or 0, dtype=torch.long))
        with self.lock:
            x = self.model.decode(z, *cond).float().cpu().numpy()
        return to_uint8(x, self.value_range)

    def info(self) -> dict:
        """Everything the page needs besides the scatter (JSON-ready)."""
        lo, hi = self.codes.min(axis=0), self.codes.max(axis=0)
        pad = 0.1 * np.maximum(hi - lo, 1e-6)
        return {"name": self.name, "latent_dim": self.latent_dim, "image_shape": list(self.shape),
                "plane": {"kind": self.plane.kind, "mean": self.plane.mean.tolist(),
                          "components": self.plane.components.tolist(), "explained": self.plane.explained},
                "code_min": (lo - pad).tolist(), "code_max": (hi + pad).tolist(),
                "classes": sorted({int(v) for v in self.labels}) if self.labels is not None else [],
                "conditional": self.conditional,
                "decode_classes": list(range(self.num_classes)) if self.conditional else []}

    def points(self) -> dict:
        """The scatter: projected points, labels and full codes (rounded for size)."""
        return {"xy": np.round(self.plane.project(self.codes), 4).tolist(),
                "labels": self.labels.tolist() if self.labels is not None else None,
                "codes": np.round(self.codes, 4).tolist()}


def to_uint8(x: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(B, C, H, W) model outputs in ``value_range`` -> (B, H, W, C) uint8."""
    lo, hi = value_range
    scaled = (x - lo) / max(hi - lo, 1e-12)
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def load_session(run_dir: str | Path) -> Session:
    """Load a trained autoencoder run for exploring: model, test codes, plane."""
    run = load_run(run_dir)
    fam = family(run.config.model.kind)
    if not (fam.has(EMBED) and fam.has(DECODE)):
        able = [f.kind for f in families() if f.has(EMBED) and f.has(DECODE)]
        raise RunDirError(f"{run.path}: is a {fam.kind} run; explore needs a model that embeds and decodes "
                          f"(model.kind: {', '.join(able)})")
    model = load_model(run.path, "cpu")
    data = load_dataset(run.config.data)
    x, y = _subsample(data)
    codes = predict(model, x, "cpu", y=y)["z"].astype(np.float64)
    return Session(run.path.name, model, data.shape, codes, y, fit_plane(codes), data.value_range)


def _subsample(data: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
    x, y, _ = eval_split(data)
    if len(x) <= MAX_POINTS:
        return x, y
    idx = np.sort(np.random.default_rng(0).choice(len(x), MAX_POINTS, replace=False))
    return x[idx], None if y is None else y[idx]

