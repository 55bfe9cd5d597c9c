"""The ``shapes`` data set (aelab.data.shapes): dSprites' factor grid drawn
from a seed and rasterised with numpy.  Same seed, same bytes; each factor
does what its name says (x and y move the sprite, scale grows it,
orientation turns it, the three shapes differ); the label is the shape and
the factor matrix follows the images through the subset and the split;
``aelab datasets`` lists it; and a run on it, of any embedding family,
writes the disentanglement metrics (which study objectives may then name).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from typer.testing import CliRunner

from aelab.cli import app
from aelab.data import load_dataset, registry, shapes
from aelab.errors import ConfigError
from aelab.models.family import DISENTANGLEMENT_METRICS
from aelab.spec import DataSpec
from aelab.studies.spec import load_study_spec
from conftest import TINY

MIDDLE = (0, 5, 0, 16, 16)  # square, scale 1, orientation 0, near the centre


def sprite(shape=0, scale=5, orientation=0, x=16, y=16, side=64) -> np.ndarray:
    """One rendered sprite (side, side) of the given factor indices."""
    return shapes.render(np.array([[shape, scale, orientation, x, y]]), side)[0, 0]


def centroid(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(img)
    return float(cols.mean()), float(rows.mean())


def test_same_seed_same_bytes_another_seed_other_images():
    a, b = shapes.generate(500, seed=3), shapes.generate(500, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert a[0].dtype == np.uint8 and set(np.unique(a[0])) == {0, 1}
    assert not np.array_equal(shapes.generate(500, seed=4)[2], a[2])


def test_the_registered_set_is_the_documented_draw():
    entry = registry.ENTRIES["shapes"]
    x, y, f = shapes.registered_arrays()
    assert (len(x), x.shape[1:]) == (entry.size, entry.shape) == (shapes.SIZE, (1, shapes.SIDE, shapes.SIDE))
    assert entry.factors == shapes.FACTORS and entry.kind == "embedded"
    assert np.array_equal(f, shapes.sample_factors(shapes.SIZE, shapes.SEED))
    assert len(np.unique(np.ravel_multi_index(f.T, shapes.GRID))) == len(f)  # distinct grid points
    for k, size in enumerate(shapes.GRID):  # every value of every factor is drawn, many times
        assert np.bincount(f[:, k], minlength=size).min() >= 300


def test_x_and_y_move_the_centroid_monotonically_and_nothing_else():
    xs = [centroid(sprite(x=i)) for i in range(32)]
    ys = [centroid(sprite(y=i)) for i in range(32)]
    assert np.all(np.diff([c[0] for c in xs]) > 0) and np.ptp([c[1] for c in xs]) < 0.5
    assert np.all(np.diff([c[1] for c in ys]) > 0) and np.ptp([c[0] for c in ys]) < 0.5


def test_scale_grows_the_pixel_count_of_every_shape():
    for shape in range(3):
        counts = [sprite(shape, scale=s).sum() for s in range(6)]
        assert np.all(np.diff(counts) > 0), (shapes.SHAPES[shape], counts)
        assert counts[-1] / counts[0] == pytest.approx(4.0, rel=0.15)  # area ~ scale^2, 0.5 -> 1


def test_orientation_turns_the_sprite():
    heart, turned = sprite(2, orientation=0), sprite(2, orientation=20)  # 20 of 40 steps: half a turn
    assert (heart != turned).sum() > 50
    # the image turned half about its centre puts the sprite at the mirrored position
    # (x = 16/31 -> 15/31), turned by pi: the same pixels, up to a few on the edge
    assert (np.rot90(heart, 2) != sprite(2, orientation=20, x=15, y=15)).sum() <= 4
    square, quarter = sprite(0, orientation=0), sprite(0, orientation=10)
    assert (square != quarter).sum() <= 4              # a square looks the same a quarter turn on
    assert (square != sprite(0, orientation=5)).sum() > 20


def test_each_shape_has_its_own_mask_and_none_leaves_the_frame():
    masks = [sprite(k) for k in range(3)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert (masks[i] != masks[j]).sum() > 30
    middle = (shapes.MARGIN + (1 - 2 * shapes.MARGIN) * 16 / 31) * 64 - 0.5  # pixel coordinates of x=y=16
    for k in range(3):
        for turn in range(0, 40, 3):  # every shape at full size lies within MARGIN of its centre ...
            rows, cols = np.nonzero(sprite(k, orientation=turn))
            assert np.hypot(cols - middle, rows - middle).max() <= shapes.MARGIN * 64
        # ... so in a corner, turned 45 degrees, it keeps its area (up to where pixel centres fall)
        corner, centred = int(sprite(k, orientation=5, x=0, y=31).sum()), int(sprite(k, orientation=5).sum())
        assert corner == pytest.approx(centred, rel=0.06)


def test_labels_are_the_shape_and_the_factors_follow_the_images(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_DATA_DIR", str(tmp_path))
    data = load_dataset(DataSpec(name="shapes", samples=300, test_size=0.25, seed=5))
    assert data.num_classes == 3 and data.factor_names == shapes.FACTORS
    assert data.factors_train.shape == (225, 5) and data.factors_test.shape == (75, 5)
    for x, y, f in ((data.x_train, data.y_train, data.factors_train), (data.x_test, data.y_test, data.factors_test)):
        assert np.array_equal(y, f[:, 0])
        assert np.array_equal(x, shapes.render(f).astype(np.float32))  # unit scale is 1: the same 0/1
    assert not list(tmp_path.iterdir())  # generated in memory, nothing written to the cache
    assert load_dataset(DataSpec(name="digits", samples=100)).factors_train is None


def test_aelab_datasets_lists_shapes():
    r = CliRunner().invoke(app, ["datasets"])
    assert r.exit_code == 0 and "shapes" in r.output and "1x64x64" in r.output


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """A tiny VAE trained on 400 sprites at 16x16 (two epochs)."""
    import aelab
    cfg = copy.deepcopy(TINY)
    cfg["data"] = {"name": "shapes", "samples": 400, "resize": 16, "test_size": 0.25, "seed": 0}
    cfg["model"] = {"kind": "vae", "encoder": [32], "latent_dim": 4}
    cfg["train"].update(epochs=2, loss="bce")
    return aelab.train(cfg, out=tmp_path_factory.mktemp("runs") / "shapes-vae")


def test_a_run_on_shapes_writes_the_disentanglement_metrics(shapes_run):
    m = shapes_run.metrics
    assert set(DISENTANGLEMENT_METRICS) <= set(m)
    assert all(0.0 <= m[k] <= 1.0 for k in DISENTANGLEMENT_METRICS)
    assert "knn_acc" in m and "elbo" in m  # the label (shape) drives the latent metrics as usual


def test_the_metrics_are_those_of_the_test_codes(shapes_run):
    import torch

    import aelab
    from aelab import disentanglement as D
    from aelab.evaluation import embed
    data = load_dataset(shapes_run.config.data)
    model = aelab.load_model(shapes_run.path)
    z = embed(model, data.x_test, torch.device("cpu"))  # 100 test images < eval.max_samples: all of them
    assert D.mig(z, data.factors_test) == pytest.approx(shapes_run.metrics["mig"])
    assert D.factor_vae_score(z, data.factors_test, seed=0) == pytest.approx(shapes_run.metrics["factorvae_score"])


def test_a_model_that_does_not_embed_gets_none(tmp_path):
    import aelab
    cfg = copy.deepcopy(TINY)
    cfg["data"] = {"name": "shapes", "samples": 200, "resize": 8, "test_size": 0.25, "seed": 0}
    cfg["model"] = {"kind": "gan", "discriminator": [16], "latent_dim": 4}
    cfg["train"] = {"method": "adversarial", "epochs": 1, "batch_size": 32, "seed": 0}
    m = aelab.train(cfg, out=tmp_path / "gan").metrics
    assert "diversity" in m and not set(DISENTANGLEMENT_METRICS) & set(m)


def test_study_objectives_may_name_them_on_shapes_only():
    base = copy.deepcopy(TINY) | {"data": {"name": "shapes", "samples": 200}}
    study = {"name": "s", "base": base, "space": {"model.latent_dim": [2, 3]}, "objectives": {"mig": "max"}}
    spec, _, _ = load_study_spec(study)
    assert spec.objectives == {"mig": "max"}
    with pytest.raises(ConfigError) as e:
        load_study_spec(study | {"base": copy.deepcopy(TINY)})  # digits: no factors
    assert "objectives.mig" in str(e.value) and "\n" not in str(e.value)
