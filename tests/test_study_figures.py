"""Tests for a study's figures: the new pure data functions in aelab.plots in
detail, and aelab.studies.figures end to end on two tiny real runs."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

import aelab
from aelab import plots
from aelab.studies.figures import study_figures
from aelab.studies.results import TrialRow
from aelab.studies.runner import StudyContext
from aelab.studies.space import Param, label_of
from aelab.studies.trial import numeric_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------ pareto_data

# Hand example, both minimized: A(1,5) B(2,3) C(3,4) D(4,1) E(2,3) F(5,5) G(nan,0)
POINTS = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5], [np.nan, 0]], dtype=float)


def test_pareto_min_min():
    data = plots.pareto_data(POINTS, ("min", "min"))
    # C is dominated by B, F by everything; B and its duplicate E both stay; G is not finite.
    assert data["mask"].tolist() == [True, True, False, True, True, False, False]
    assert data["front"].tolist() == [0, 1, 4, 3]  # sorted by objective 1 (stable for ties)
    assert data["step"] == "post"


def test_pareto_min_max():
    data = plots.pareto_data(POINTS, ("min", "max"))
    # Maximizing objective 2: A(1,5) dominates everything with x >= 1 and y <= 5.
    assert data["mask"].tolist() == [True, False, False, False, False, False, False]
    pts = np.array([[1, 1], [2, 3], [3, 2], [4, 4]], dtype=float)
    assert plots.pareto_data(pts, ("min", "max"))["mask"].tolist() == [True, True, False, True]
    assert plots.pareto_data(pts, ("max", "max"))["mask"].tolist() == [False, False, False, True]
    assert plots.pareto_data(pts, ("max", "min"))["step"] == "pre"


def test_pareto_rejects_bad_direction():
    with pytest.raises(ValueError):
        plots.pareto_data(POINTS, ("min", "down"))


# ------------------------------------------------------- metric vs param

def test_metric_vs_param_numeric_sorted_and_finite():
    data = plots.metric_vs_param_data([0.1, 0.001, 0.01, 1.0], [3.0, 1.0, 2.0, math.nan], categorical=False)
    assert not data["categorical"]
    assert data["x"].tolist() == [0.001, 0.01, 0.1]
    assert data["y"].tolist() == [1.0, 2.0, 3.0]
    assert data["n_dropped"] == 1


def test_metric_vs_param_categorical_order_and_means():
    xs = ["sgd", "adam", "sgd", "rmsprop", "adam", "sgd"]
    ys = [1.0, 0.5, 3.0, 0.25, 0.75, math.inf]
    data = plots.metric_vs_param_data(xs, ys, categorical=True)
    assert data["categories"] == ["sgd", "adam", "rmsprop"]  # first appearance
    assert data["means"].tolist() == [2.0, 0.625, 0.25]
    assert data["n"].tolist() == [2, 2, 1]
    assert data["n_dropped"] == 1
    assert np.all(np.abs(data["x"] - data["position"]) <= 0.15)
    ordered = plots.metric_vs_param_data(xs, ys, categorical=True, order=["rmsprop", "adagrad", "sgd", "adam"])
    assert ordered["categories"] == ["rmsprop", "sgd", "adam"]  # choice order, unused choices left out
    assert ordered["means"].tolist() == [0.25, 2.0, 0.625]


def test_metric_vs_param_list_categories_are_json():
    data = plots.metric_vs_param_data([[], [32, 10], [10], []], [1, 2, 3, 5], categorical=True,
                                      order=[[], [10], [32, 10]])
    assert data["categories"] == ["[]", "[10]", "[32,10]"]
    assert data["means"].tolist() == [3.0, 3.0, 2.0]


# ----------------------------------------------------------- latent panels

def test_latent_panels_data_shapes_and_pca():
    rng = np.random.default_rng(0)
    z2, z5 = rng.normal(size=(50, 2)), rng.normal(size=(5000, 5))
    y2, y5 = rng.integers(0, 3, 50), rng.integers(0, 3, 5000)
    data = plots.latent_panels_data([("two", z2, y2), ("five", z5, y5), ("none", z2, None)], max_points=3000)
    assert [d["name"] for d in data] == ["two", "five", "none"]
    assert [d["method"] for d in data] == ["identity", "pca", "identity"]
    assert data[0]["xy"].shape == (50, 2) and np.allclose(data[0]["xy"], z2)
    assert data[1]["xy"].shape == (3000, 2) and len(data[1]["labels"]) == 3000
    assert data[1]["explained_variance_ratio"] is not None
    assert data[2]["labels"] is None


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_SIGNATURE


def test_new_renderers_write_pngs(tmp_path):
    rng = np.random.default_rng(1)
    plots.save_latent_panels([("a", rng.normal(size=(40, 2)), rng.integers(0, 12, 40)),
                              ("b", rng.normal(size=(40, 4)), rng.integers(0, 12, 40))], tmp_path / "lat.png")
    plots.save_metric_vs_param([1e-3, 1e-2, 1e-1], [1, 2, 3], tmp_path / "num.png", "lr", "loss",
                               categorical=False, log=True)
    plots.save_pareto(POINTS, ("min", "max"), tmp_path / "par.png", labels=list("ABCDEFG"))
    for name in ("lat.png", "num.png", "par.png"):
        assert_png(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lat.png", "num.png", "par.png"]


# ------------------------------------------------------------ end to end

@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, dict]:
    """A study folder holding two tiny trained runs, latent_dim 2 and 3."""
    from conftest import TINY

    study_dir = tmp_path_factory.mktemp("study")
    runs = {}
    for dim in (2, 3):
        cfg = copy.deepcopy(TINY)
        cfg["model"]["latent_dim"] = dim
        runs[dim] = aelab.train(cfg, out=study_dir / "runs" / f"dim{dim}")
    return study_dir, runs


def _row(number: int, dim: int, run, state: str = "complete") -> TrialRow:
    values = {"model.latent_dim": dim}
    if state != "complete":
        return TrialRow(number, state, values, label_of(values), fail_reason="diverged")
    return TrialRow(number, state, values, label_of(values), per_seed=[numeric_metrics(run.metrics)],
                    runs=[f"runs/{run.path.name}"], seconds=1.0)


def _ctx(study_dir: Path, objectives: dict[str, str]) -> StudyContext:
    return StudyContext(name="t", study_dir=study_dir, storage_url=None, base={},
                        params=[Param("model.latent_dim", "categorical", (2, 3))], objectives=objectives,
                        repeats=1, strategy="grid", seed=0, budget=2)


def test_study_figures_end_to_end(two_runs):
    study_dir, runs = two_runs
    rows = [_row(0, 2, runs[2]), _row(1, 3, runs[3]), _row(2, 3, None, state="failed")]
    ctx = _ctx(study_dir, {"recon_mse": "min", "silhouette": "max"})
    pd = plots.pareto_data([[r.mean("recon_mse"), r.mean("silhouette")] for r in rows[:2]], ("min", "max"))
    best = [rows[i].number for i in pd["front"]]
    paths = study_figures(study_dir, rows, ctx, best)
    folder = study_dir / "figures"
    expected = {"bar_recon_mse.png", "bar_silhouette.png", "reconstructions.png", "latent_spaces.png",
                "recon_mse_vs_latent_dim.png", "pareto.png"}
    assert {p.name for p in paths} == expected
    assert all(p.parent == folder for p in paths)
    for p in paths:
        assert_png(p)
    assert {p.name for p in folder.iterdir()} == expected  # nothing else, no *.tmp left behind


def test_study_figures_single_objective_has_no_pareto(two_runs, tmp_path):
    study_dir, runs = two_runs
    (tmp_path / "runs").symlink_to(study_dir / "runs")  # own figures folder, same runs
    rows = [_row(0, 2, runs[2]), _row(1, 3, runs[3])]
    paths = study_figures(tmp_path, rows, _ctx(tmp_path, {"recon_mse": "min"}), [0])
    assert "pareto.png" not in {p.name for p in paths}
    assert {p.name for p in paths} == {"bar_recon_mse.png", "reconstructions.png", "latent_spaces.png",
                                       "recon_mse_vs_latent_dim.png"}


def test_study_figures_all_failed(tmp_path):
    rows = [_row(0, 2, None, state="failed"), _row(1, 3, None, state="failed")]
    assert study_figures(tmp_path, rows, _ctx(tmp_path, {"recon_mse": "min", "silhouette": "max"}), []) == []
    assert study_figures(tmp_path, [], _ctx(tmp_path, {"recon_mse": "min"}), []) == []
    assert not (tmp_path / "figures").exists()


def test_study_figures_skip_missing_run(two_runs, tmp_path):
    """A run folder that has gone missing costs its model figures, not the study's outputs."""
    _, runs = two_runs
    row = _row(0, 2, runs[2])
    with pytest.warns(UserWarning, match="skipping"):
        paths = study_figures(tmp_path, [row], _ctx(tmp_path, {"recon_mse": "min"}), [0])
    assert {p.name for p in paths} == {"bar_recon_mse.png", "recon_mse_vs_latent_dim.png"}
