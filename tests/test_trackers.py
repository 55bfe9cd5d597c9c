"""``track.backend: tensorboard | mlflow``: per-epoch metrics, the resolved
config and the figures, read back through each tool's own reader; a missing
extra is one line naming it."""
from __future__ import annotations

import copy
import csv
import sys

import pytest
import yaml
from typer.testing import CliRunner

import aelab
from aelab.cli import app as cli_app
from aelab.errors import ConfigError
from aelab.training.trackers import epoch_metrics, flat_params

from conftest import TINY


def _cfg(**track) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["train"].update(epochs=2, batch_size=256)
    cfg["eval"]["figures"] = True
    cfg["track"] = track
    return cfg


def _history(run_dir) -> list[dict]:
    with (run_dir / "history.csv").open() as f:
        return list(csv.DictReader(f))


def test_epoch_metrics_keep_finite_numbers_only():
    row = {"epoch": 3, "train_loss": 0.5, "val_loss": float("nan"), "lr": 1e-3, "note": "x", "flag": True}
    assert epoch_metrics(row) == {"train_loss": 0.5, "lr": 1e-3}


def test_flat_params_are_dotted_strings():
    assert flat_params({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": {}}) == \
        {"a.b": "1", "a.c": "[1, 2]", "d": "None", "e": "{}"}


def test_tensorboard_event_file_holds_metrics_config_and_figures(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is part of the test extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run = aelab.train(_cfg(backend="tensorboard"), out=tmp_path / "run")
    events = EventAccumulator(str(run.path / "tensorboard"), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    events.Reload()
    history = _history(run.path)
    for key in ("train_loss", "val_loss"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(int(r["epoch"]), pytest.approx(float(r[key]), rel=1e-6)) for r in history]
    assert events.Scalars("final/recon_mse")[0].value == pytest.approx(run.metrics["recon_mse"], rel=1e-6)
    config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert yaml.safe_load("\n".join(l[4:] for l in config.splitlines())) == \
        yaml.safe_load((run.path / "config.yaml").read_text())
    figures = sorted(p.stem for p in (run.path / "figures").glob("*.png"))
    assert sorted(t.split("/", 1)[1] for t in events.Tags()["images"]) == figures
    assert events.Images("figures/loss_curves")[0].width > 100


pytestmark = pytest.mark.filterwarnings("ignore:.*noload.*")  # MLflow's own SQLAlchemy usage


@pytest.fixture
def mlflow_client():
    pytest.importorskip("mlflow", reason="the mlflow extra is part of the test extra")
    from mlflow.tracking import MlflowClient
    return MlflowClient


def _check_mlflow_run(client, run_dir, run_id):
    history = _history(run_dir)
    logged = client.get_metric_history(run_id, "train_loss")
    assert [(m.step, m.value) for m in logged] == \
        [(int(r["epoch"]), pytest.approx(float(r["train_loss"]), rel=1e-9)) for r in history]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.latent_dim"] == "2" and run.data.params["track.backend"] == "mlflow"
    assert run.data.metrics["final/recon_mse"] == pytest.approx(aelab.load_run(run_dir).metrics["recon_mse"])
    names = {a.path for a in client.list_artifacts(run_id)} | {a.path for a in client.list_artifacts(run_id, "figures")}
    figures = {f"figures/{p.name}" for p in (run_dir / "figures").glob("*.png")}
    assert "config.yaml" in names and figures and figures <= names


def test_mlflow_default_store_lives_in_the_run_dir(tmp_path, mlflow_client):
    run = aelab.train(_cfg(backend="mlflow"), out=tmp_path / "run")
    assert (run.path / "mlflow.db").exists() and (run.path / "mlartifacts").is_dir()
    saved = yaml.safe_load((run.path / "mlflow_run.json").read_text())
    client = mlflow_client(saved["tracking_uri"])
    _check_mlflow_run(client, run.path, saved["run_id"])
    assert client.download_artifacts(saved["run_id"], "config.yaml", str(tmp_path)) and \
        (tmp_path / "config.yaml").read_text() == (run.path / "config.yaml").read_text()


def test_mlflow_any_tracking_uri_and_resume_keeps_one_run(tmp_path, mlflow_client, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own file store, as a non-default URI
    uri = (tmp_path / "mlruns").as_uri()
    run = aelab.train(_cfg(backend="mlflow", uri=uri), out=tmp_path / "run")
    assert not (run.path / "mlflow.db").exists() and (tmp_path / "mlruns").is_dir()
    client = mlflow_client(uri)
    run_id = yaml.safe_load((run.path / "mlflow_run.json").read_text())["run_id"]
    _check_mlflow_run(client, run.path, run_id)
    aelab.train(resume=run.path)                                   # a resumed run logs to the same MLflow run
    experiment = client.get_experiment_by_name("tiny")
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [run_id]


@pytest.mark.parametrize("track, module", [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_missing_extra_is_one_line_naming_it_and_writes_nothing(tmp_path, monkeypatch, track, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=rf"pip install 'aelab\[{track}\]'"):
        aelab.train(_cfg(backend=track), out=out)
    assert not out.exists()
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump(_cfg(backend=track)))
    r = CliRunner().invoke(cli_app, ["train", str(cfg_file), "--out", str(out), "--quiet"])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and f"aelab[{track}]" in lines[0] and "track.backend" in lines[0]
    assert not out.exists()


def test_unknown_tracker_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="track.backend"):
        aelab.train(_cfg(backend="wandb"), out=tmp_path / "run")


def test_quiet_silences_the_trackers_info_lines(tmp_path, mlflow_client):
    """MLflow (and alembic under it) log INFO lines of their own; --quiet
    leaves only warnings and errors on stderr."""
    import subprocess
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(_cfg(backend="mlflow") | {"eval": {"figures": False, "max_samples": 100}}))
    done = subprocess.run([sys.executable, "-m", "aelab", "train", str(cfg), "--out", str(tmp_path / "run"),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "INFO" not in done.stderr, done.stderr


def test_the_old_train_track_key_is_read_as_track_backend_in_one_line(tmp_path):
    """Configs and run directories written before ``track`` had its own
    section still work; the warning names the new place."""
    from aelab.spec import load_config
    old = copy.deepcopy(TINY)
    old["train"].update(track="tensorboard", track_uri=str(tmp_path / "tb"))
    with pytest.warns(UserWarning) as caught:
        cfg = load_config(old)
    assert sorted(str(w.message) for w in caught) == [
        "train.track is now track.backend (read as such; write it there)",
        "train.track_uri is now track.uri (read as such; write it there)"]
    assert (cfg.track.backend, cfg.track.uri) == ("tensorboard", str(tmp_path / "tb"))
    assert "track" not in cfg.model_dump()["train"]
