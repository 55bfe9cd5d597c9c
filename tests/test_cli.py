"""The ``aelab`` command line through Typer's test runner."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from aelab.cli import app
from conftest import one_line_error

runner = CliRunner()


@pytest.fixture
def cfg_file(tiny, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny))
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_train_show_evaluate_round_trip(cfg_file, tmp_path):
    out = tmp_path / "run"
    r = run("train", cfg_file, "--out", out, "--quiet", "--set", "train.epochs=2", "--set", "model.latent_dim=3")
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_trained"] == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["latent_dim"] == 3

    r = run("show", out)
    assert r.exit_code == 0 and "completed" in r.output and "recon_mse" in r.output
    r = run("show", out, "--json")
    assert json.loads(r.stdout)["epochs_trained"] == 2
    r = run("evaluate", out)
    assert r.exit_code == 0 and "silhouette" in r.output


def test_datasets_lists_every_data_set():
    r = run("datasets")
    assert r.exit_code == 0
    for name in ("digits", "mnist-5k", "mnist", "fashion-mnist", "kmnist", "npz", "idx"):
        assert name in r.output
    assert "1797" in r.output.replace(",", "") and "8x8" in r.output


def test_unknown_key_is_one_line_with_the_key_path(cfg_file, tmp_path):
    line = one_line_error(run("train", cfg_file, "--out", tmp_path / "x", "--set", "train.epochz=3"))
    assert "train.epochz" in line and "unknown key" in line
    assert not (tmp_path / "x").exists()


def test_wrong_type_is_one_line(cfg_file, tmp_path):
    line = one_line_error(run("train", cfg_file, "--out", tmp_path / "x", "--set", "train.epochs=many"))
    assert "train.epochs" in line and "integer" in line


def test_missing_config_file(tmp_path):
    line = one_line_error(run("train", tmp_path / "nope.yaml"))
    assert "nope.yaml" in line


def test_layer_that_does_not_fit_names_the_layer(cfg_file, tmp_path):
    conv = "{type: conv2d, filters: 4, kernel: 3}"
    r = run("train", cfg_file, "--out", tmp_path / "x", "--set", f"model.encoder=[{conv}, {conv}, {conv}, {conv}]")
    line = one_line_error(r)
    assert "model.encoder[3] (conv2d)" in line and "(4, 2, 2)" in line
    assert not (tmp_path / "x").exists()


def test_nan_in_npz_names_the_file_and_writes_nothing(cfg_file, tmp_path):
    x = np.random.rand(20, 8, 8).astype(np.float32)
    x[3, 2, 2] = np.nan
    np.savez(tmp_path / "bad.npz", x=x)
    r = run("train", cfg_file, "--out", tmp_path / "x", "--set", "data.name=npz",
            "--set", f"data.path={tmp_path / 'bad.npz'}")
    line = one_line_error(r)
    assert "bad.npz" in line and "NaN" in line.replace("nan", "NaN")
    assert not (tmp_path / "x").exists()


def test_user_npz_trains(cfg_file, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", x=rng.random((60, 8, 8)).astype(np.float32), y=np.arange(60) % 3)
    r = run("train", cfg_file, "--out", tmp_path / "ok", "--quiet", "--set", "data.name=npz",
            "--set", f"data.path={tmp_path / 'mine.npz'}", "--set", "train.epochs=1")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ok" / "metrics.json").read_text())["eval_samples"] == 15


def test_resume_of_a_non_run_and_show_of_nothing(tmp_path):
    assert "not a run directory" in one_line_error(run("train", "--resume", tmp_path))
    assert "no such run directory" in one_line_error(run("show", tmp_path / "missing"))
    assert "CONFIG" in one_line_error(run("train"))


def test_progress_bar_and_quiet(cfg_file, tmp_path):
    loud = run("train", cfg_file, "--out", tmp_path / "a", "--set", "train.epochs=2")
    quiet = run("train", cfg_file, "--out", tmp_path / "b", "--set", "train.epochs=2", "--quiet")
    assert "epoch 2/2  loss " in loud.stderr and " elapsed" in loud.stderr  # the bar is on stderr
    assert str(tmp_path / "a") in loud.stderr and "epoch 2/2" not in loud.stdout
    assert "epoch 2/2" not in quiet.output


def test_study_run_through_the_cli(tiny, tmp_path):
    tiny["train"]["epochs"] = 1
    spec = {"name": "cli", "base": tiny, "space": {"model.latent_dim": [2, 3]},
            "objectives": {"recon_mse": "min"}, "strategy": "grid"}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    r = run("study", "run", path, "--out", tmp_path / "s")
    assert r.exit_code == 0, r.output
    assert "2 complete" in r.output and (tmp_path / "s" / "results.csv").exists()
    line = one_line_error(run("study", "run", path, "--out", tmp_path / "t", "--trials", "1"))
    assert "do not fit in --trials 1" in line and not (tmp_path / "t").exists()
    spec["space"] = {"model.latent_dimm": [2]}
    path.write_text(yaml.safe_dump(spec))
    assert "space.model.latent_dimm" in one_line_error(run("study", "run", path, "--out", tmp_path / "u"))
