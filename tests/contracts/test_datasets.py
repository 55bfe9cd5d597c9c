"""The contract every data set keeps: a data set joins by its entry in
:data:`aelab.dataset_registry.ENTRIES` and each check runs for it, offline
-- downloads from a ``file://`` mirror of small IDX files made here, user
formats from files made here.

It is a name the spec accepts and ``aelab datasets`` lists; it loads as
float32 (N, C, H, W) images of the registered shape with int64 labels
0..K-1; ``normalize: unit`` puts the values in [0, 1]; the split is the same
every time; an unknown name is one line listing the known ones.
"""
from __future__ import annotations

import numpy as np
import pytest

from aelab.data import list_datasets, load_dataset, registry
from aelab.errors import ConfigError
from aelab.spec import DATASET_NAMES, DataSpec, load_config
from test_data import fake_set, sha

NAMES = list(registry.ENTRIES)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A DataSpec for ``name`` that loads without the network."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AELAB_DATA_DIR", str(cache))

    def spec(name: str) -> DataSpec:
        kind = registry.ENTRIES[name].kind
        if kind == "download":
            src = tmp_path / f"mirror-{name}"
            fake_set(src, n_train=40, n_test=20, hw=registry.ENTRIES[name].shape[1:])
            monkeypatch.setitem(registry.CHECKSUMS, name, {f: sha(src / f) for f in registry.IDX_FILES})
            monkeypatch.setitem(registry.MIRRORS, name, (src.as_uri() + "/",))
            return DataSpec(name=name)
        if name == "npz":
            rng = np.random.default_rng(0)
            path = tmp_path / "mine.npz"
            np.savez(path, x=rng.integers(0, 256, (30, 6, 6)).astype(np.uint8), y=np.arange(30) % 3)
            return DataSpec(name="npz", path=str(path), test_size=0.2)
        if name == "idx":
            fake_set(tmp_path / "idx-folder", hw=(6, 5))
            return DataSpec(name="idx", path=str(tmp_path / "idx-folder"))
        return DataSpec(name=name, samples=200)
    return spec


def test_the_spec_and_the_listing_know_every_registered_name():
    assert DATASET_NAMES == tuple(NAMES)
    assert [d.name for d in list_datasets()] == NAMES
    with pytest.raises(ConfigError, match=r"data.name: .*'digits'.*'mnist-5k'"):
        load_config({"data": {"name": "cifar"}})


@pytest.mark.parametrize("name", NAMES)
def test_loads_images_of_its_shape_with_labels_0_to_k(name, offline):
    data = load_dataset(offline(name))
    entry = registry.ENTRIES[name]
    assert data.x_train.dtype == np.float32 and data.x_train.ndim == 4 and len(data.x_train) > 0
    if entry.kind != "user":
        assert data.shape == entry.shape
    for y in (data.y_train, data.y_test):
        if y is not None and len(y):
            assert y.dtype == np.int64 and y.min() >= 0 and y.max() < data.num_classes
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0  # normalize: unit (the default)


@pytest.mark.parametrize("name", NAMES)
def test_the_split_is_the_same_every_time(name, offline):
    spec = offline(name)
    a, b = load_dataset(spec), load_dataset(spec)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.x_test, b.x_test)
