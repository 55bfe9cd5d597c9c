"""Tests for aelab.plots: the pure data functions in detail, the renderers as smoke tests.

Renderers are checked for a real PNG on disk and no temporary files left
behind; pixels are not compared.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from aelab import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    """``path`` is a non-empty PNG and its folder holds no leftover temporary file."""
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_SIGNATURE
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ---------------------------------------------------------------- images

@pytest.mark.parametrize(
    "shape, expected",
    [
        ((5, 1, 28, 28), (5, 28, 28)),
        ((5, 784), (5, 28, 28)),
        ((5, 64), (5, 8, 8)),
        ((5, 10), (5, 2, 5)),
        ((5, 7, 9), (5, 7, 9)),
        ((5, 3, 4, 6), (5, 4, 6, 3)),
        ((5, 48), (5, 4, 4, 3)),  # 48 is not a square, 48 / 3 = 16 is: flat RGB
    ],
)
def test_as_images_shapes(shape, expected):
    assert plots.as_images(np.zeros(shape)).shape == expected


def test_as_images_rgb_channel_order():
    x = np.zeros((1, 3, 2, 2))
    x[0, 2] = 1.0  # blue channel
    img = plots.as_images(x)[0]
    assert img[..., 2].min() == 1.0 and img[..., :2].max() == 0.0
    assert np.array_equal(plots.as_images(x.reshape(1, -1)), plots.as_images(x))


def test_as_images_rejects_other_channel_counts():
    with pytest.raises(ValueError, match="C in"):
        plots.as_images(np.zeros((2, 2, 4, 4)))


class FakeTensor:
    """Duck-types the part of a torch tensor plots uses (importing torch costs seconds)."""

    def __init__(self, array):
        self.array = array

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.array


def test_as_images_accepts_tensor_like():
    assert plots.as_images(FakeTensor(np.zeros((3, 1, 4, 4)))).shape == (3, 4, 4)


def test_tile_images_layout():
    imgs = np.stack([np.full((2, 3), k, dtype=float) for k in range(5)])
    big = plots.tile_images(imgs, nrows=2, ncols=3, pad=1)
    assert big.shape == (2 * 2 + 1, 3 * 3 + 2)
    assert big[0, 0] == 0 and big[0, 4] == 1 and big[3, 0] == 3 and big[3, 4] == 4
    assert np.isnan(big[2, 0])  # padding
    assert np.isnan(big[3, 8])  # missing sixth cell
    with pytest.raises(ValueError):
        plots.tile_images(imgs, 2, 2)


# ---------------------------------------------------------------- loss curves

def test_loss_curve_data_nan_safe_and_best_epoch():
    history = [
        {"epoch": 1, "train_loss": 3.0, "val_loss": 3.5},
        {"epoch": 2, "train_loss": float("inf"), "val_loss": None},
        {"epoch": 3, "train_loss": "oops", "val_loss": 2.0},
        {"epoch": 4, "train_loss": 1.5},
    ]
    d = plots.loss_curve_data(history)
    assert d["epochs"].tolist() == [1, 2, 3, 4]
    assert d["train_loss"][0] == 3.0 and d["train_loss"][3] == 1.5
    assert np.isnan(d["train_loss"][1]) and np.isnan(d["train_loss"][2])
    assert np.isnan(d["val_loss"][[1, 3]]).all()
    assert d["has_val"] and d["best_epoch"] == 3 and d["best_val_loss"] == 2.0


def test_loss_curve_data_without_val_and_default_epochs():
    d = plots.loss_curve_data([{"loss": 2.0}, {"loss": 1.0}])
    assert d["epochs"].tolist() == [1, 2]
    assert d["train_loss"].tolist() == [2.0, 1.0]
    assert not d["has_val"] and d["best_epoch"] is None and d["best_val_loss"] is None
    assert len(d["val_loss"]) == 2 and np.isnan(d["val_loss"]).all()


def test_loss_curve_data_empty():
    d = plots.loss_curve_data([])
    assert len(d["epochs"]) == 0 and not d["has_val"]


# ---------------------------------------------------------------- reconstructions

def test_reconstruction_grid_one_per_class_first(rng):
    y = np.array([3, 1, 3, 0, 1, 2, 0, 2, 5, 5])
    x = np.arange(10, dtype=float)[:, None, None, None] * np.ones((10, 1, 2, 2))
    originals, recons, labels = plots.reconstruction_grid_data(x, x + 0.5, n=7, y=y)
    # first occurrence of labels 0, 1, 2, 3, 5 -> indices 3, 1, 5, 0, 8; then fill with 2, 4
    assert originals[:, 0, 0].tolist() == [3, 1, 5, 0, 8, 2, 4]
    assert labels.tolist() == [0, 1, 2, 3, 5, 3, 1]
    assert np.array_equal(recons, originals + 0.5)
    assert originals.shape == (7, 2, 2)


def test_reconstruction_grid_without_labels_and_small_n(rng):
    x = rng.normal(size=(4, 16))
    originals, recons, labels = plots.reconstruction_grid_data(x, x.reshape(4, 1, 4, 4), n=10)
    assert labels is None and originals.shape == recons.shape == (4, 4, 4)
    o, _, lab = plots.reconstruction_grid_data(x, x, n=2, y=[1, 0, 1, 0])
    assert lab.tolist() == [0, 1] and o.shape == (2, 4, 4)


def test_reconstruction_grid_rejects_mismatch():
    with pytest.raises(ValueError):
        plots.reconstruction_grid_data(np.zeros((3, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError):
        plots.reconstruction_grid_data(np.zeros((3, 4)), np.zeros((3, 4)), y=[0, 1])


# ---------------------------------------------------------------- latent scatter

def test_latent_scatter_2d_as_is(rng):
    z = rng.normal(size=(50, 2))
    d = plots.latent_scatter_data(z, y=np.arange(50) % 10)
    assert d["method"] == "identity" and d["explained_variance_ratio"] is None
    assert np.array_equal(d["xy"], z) and d["axis_labels"] == ("z1", "z2")
    assert d["labels"].tolist() == (np.arange(50) % 10).tolist()


def test_latent_scatter_pca_only_above_2d(rng):
    z = rng.normal(size=(200, 8)) * np.arange(1, 9)
    d = plots.latent_scatter_data(z)
    assert d["method"] == "pca" and d["xy"].shape == (200, 2) and d["dim"] == 8
    evr = d["explained_variance_ratio"]
    assert evr.shape == (2,) and evr[0] >= evr[1] > 0 and evr.sum() <= 1.0
    assert d["axis_labels"][0].startswith("PC1 (") and d["axis_labels"][0].endswith("%)")


def test_latent_scatter_1d_jitter(rng):
    z = rng.normal(size=(30, 1))
    d = plots.latent_scatter_data(z)
    assert d["method"] == "jitter" and d["xy"].shape == (30, 2)
    assert np.array_equal(d["xy"][:, 0], z[:, 0]) and np.abs(d["xy"][:, 1]).max() <= 0.5


def test_latent_scatter_subsample_deterministic(rng):
    z = rng.normal(size=(1000, 5))
    y = rng.integers(0, 10, size=1000)
    a = plots.latent_scatter_data(z, y, max_points=100, seed=1)
    b = plots.latent_scatter_data(z, y, max_points=100, seed=1)
    c = plots.latent_scatter_data(z, y, max_points=100, seed=2)
    assert a["xy"].shape == (100, 2) and len(a["labels"]) == 100
    assert np.array_equal(a["indices"], b["indices"]) and np.array_equal(a["xy"], b["xy"])
    assert not np.array_equal(a["indices"], c["indices"])
    assert np.all(np.diff(a["indices"]) > 0)  # original order kept
    assert np.array_equal(a["labels"], y[a["indices"]])


def test_latent_scatter_drops_nonfinite_rows(rng):
    z = rng.normal(size=(20, 2))
    z[[2, 5]] = np.nan
    d = plots.latent_scatter_data(z, y=np.arange(20))
    assert d["n_dropped"] == 2 and len(d["xy"]) == 18
    assert 2 not in d["labels"] and 5 not in d["labels"]


# ---------------------------------------------------------------- latent grid

def test_latent_grid_corners_and_order():
    n, q = 5, 0.95
    g = plots.latent_grid(n, q)
    hi = norm.ppf(q)
    assert g.shape == (n * n, 2)
    assert np.allclose(g[0], [-hi, hi])            # top-left: smallest z1, largest z2
    assert np.allclose(g[n - 1], [hi, hi])         # top-right
    assert np.allclose(g[-n], [-hi, -hi])          # bottom-left
    assert np.allclose(g[-1], [hi, -hi])           # bottom-right
    rows = g.reshape(n, n, 2)
    assert np.all(np.diff(rows[..., 0], axis=1) > 0)    # z1 increases along a row
    assert np.all(np.diff(rows[:, 0, 1]) < 0)           # z2 decreases down the rows
    assert np.allclose(rows[..., 1], rows[:, :1, 1])    # z2 constant within a row
    assert np.allclose(g[n * n // 2], [0.0, 0.0])       # odd n: centre is the origin


def test_latent_grid_validates():
    with pytest.raises(ValueError):
        plots.latent_grid(0)
    with pytest.raises(ValueError):
        plots.latent_grid(5, quantile=1.0)
    assert plots.latent_grid(1).tolist() == [[0.0, 0.0]]


# ---------------------------------------------------------------- bar chart

def test_bar_chart_data_mean_std():
    d = plots.bar_chart_data({"adam": [1.0, 2.0, 3.0], "sgd": [4.0], "rmsprop": [], "nadam": [1.0, float("nan"), 3.0]})
    assert d["names"] == ["adam", "sgd", "rmsprop", "nadam"]
    assert d["means"][0] == pytest.approx(2.0) and d["stds"][0] == pytest.approx(1.0)  # ddof=1
    assert d["means"][1] == 4.0 and d["stds"][1] == 0.0
    assert math.isnan(d["means"][2]) and math.isnan(d["stds"][2])
    assert d["means"][3] == pytest.approx(2.0) and d["stds"][3] == pytest.approx(math.sqrt(2))
    assert d["n"].tolist() == [3, 1, 0, 2] and d["n_nonfinite"].tolist() == [0, 0, 0, 1]


# ---------------------------------------------------------------- renderers

def test_save_loss_curves(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e if e != 3 else float("nan")} for e in range(1, 6)]
    assert_png(plots.save_loss_curves(history, tmp_path / "loss.png", logy=True))
    assert_png(plots.save_loss_curves([{"loss": 1.0}], tmp_path / "loss-train-only.png", title="t"))


def test_save_reconstructions(tmp_path, rng):
    x = rng.uniform(size=(30, 1, 8, 8))
    out = plots.save_reconstructions(x, x.reshape(30, -1) * 0.9, tmp_path / "sub" / "recon.png", n=10,
                                     y=rng.integers(0, 10, 30))
    assert out == tmp_path / "sub" / "recon.png"
    assert_png(out)


def test_save_reconstruction_rows(tmp_path, rng):
    x = rng.uniform(size=(6, 3, 5, 5))  # RGB
    rows = [("original", x), ("1 hidden", x * 0.8), ("2 hidden", x[:4] * 0.5)]
    assert_png(plots.save_reconstruction_rows(rows, tmp_path / "rows.png", title="Depth"))


def test_save_latent_scatter_variants(tmp_path, rng):
    y = rng.integers(0, 10, 300)
    assert_png(plots.save_latent_scatter(rng.normal(size=(300, 2)), y, tmp_path / "z2.png"))
    assert_png(plots.save_latent_scatter(rng.normal(size=(300, 6)), y, tmp_path / "z6.png", max_points=100))
    assert_png(plots.save_latent_scatter(rng.normal(size=(300, 1)), None, tmp_path / "z1.png"))
    assert_png(plots.save_latent_scatter(rng.normal(size=(300, 2)), rng.normal(size=300), tmp_path / "zc.png"))


def test_save_manifold(tmp_path, rng):
    n = 4
    imgs = rng.uniform(size=(n * n, 1, 6, 6))
    assert_png(plots.save_manifold(imgs, n, tmp_path / "manifold.png", quantile=0.95))
    with pytest.raises(ValueError):
        plots.save_manifold(imgs[:-1], n, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_save_image_grid(tmp_path, rng):
    imgs = rng.uniform(size=(13, 64))
    assert_png(plots.save_image_grid(imgs, tmp_path / "grid.png", ncols=5, labels=list(range(13))))


def test_save_bar_chart(tmp_path):
    groups = {"adam": [0.1, 0.12, 0.11], "sgd": [0.3, float("nan")], "rmsprop": [0.15]}
    assert_png(plots.save_bar_chart(groups, tmp_path / "bars.png", ylabel="val loss"))


def test_failed_render_leaves_old_file_no_temp_no_open_figure(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    target = tmp_path / "loss.png"
    plots.save_loss_curves([{"loss": 1.0}], target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", boom)
    open_before = len(plt.get_fignums())
    with pytest.raises(RuntimeError):
        plots.save_loss_curves([{"loss": 2.0}], target)
    assert len(plt.get_fignums()) == open_before
    assert target.read_bytes() == before
    assert_png(target)


def test_figures_are_closed(tmp_path, rng):
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    plots.save_image_grid(rng.uniform(size=(4, 16)), tmp_path / "g.png")
    plots.save_bar_chart({"a": [1.0]}, tmp_path / "b.png", ylabel="y")
    assert len(plt.get_fignums()) == before
