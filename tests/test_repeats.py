"""``aelab train CONFIG --repeats N``: N seeds fused into one batched
training, each an ordinary run directory equal to the seed trained alone,
and their mean and spread; a model that does not stack is trained one run
after another (said in one line); bad input is one line and writes nothing."""
from __future__ import annotations

import copy
import json
import statistics

import pytest
from typer.testing import CliRunner

import aelab
from aelab.cli import app
from aelab.errors import AelabError
from conftest import TINY
from test_training import assert_same_weights, stable


def _config(**train) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["train"].update({"epochs": 3, "threads": 1, **train})  # bitwise equality holds per thread count
    return cfg


def test_each_fused_seed_is_the_run_it_would_be_alone(tmp_path):
    summary = aelab.train_repeats(_config(), 3, out=tmp_path / "rep")
    assert summary["trained"] == "fused" and summary["seeds"] == [0, 1, 2]
    for seed in (0, 2):
        fused = aelab.load_run(tmp_path / "rep" / f"seed-{seed}")
        alone = aelab.train(_config(seed=seed), out=tmp_path / f"alone-{seed}")
        assert fused.config == alone.config and fused.status == "completed"
        assert_same_weights(fused.path, alone.path)
        assert stable(fused.metrics) == stable(alone.metrics)
        assert [r["train_loss"] for r in fused.history] == [r["train_loss"] for r in alone.history]
    written = json.loads((tmp_path / "rep" / "repeats.json").read_text())
    losses = [aelab.load_run(tmp_path / "rep" / f"seed-{s}").metrics["recon_mse"] for s in (0, 1, 2)]
    assert written["metrics"]["recon_mse"]["mean"] == pytest.approx(statistics.fmean(losses))
    assert written["metrics"]["recon_mse"]["std"] == pytest.approx(statistics.stdev(losses))
    assert "| recon_mse |" in (tmp_path / "rep" / "repeats.md").read_text()


def test_runs_that_do_not_stack_are_trained_one_after_another(tmp_path):
    cfg = _config()
    cfg["train"]["optimizer_args"] = {"foreach": True}  # the fused rules mirror torch's single-tensor update only
    said = r"2 runs trained one after another, not fused \(train.optimizer_args: .*foreach=True is not supported"
    with pytest.warns(UserWarning, match=said):
        summary = aelab.train_repeats(cfg, 2, out=tmp_path / "rep")
    assert summary["trained"] == "one after another"
    alone = aelab.train(copy.deepcopy(cfg) | {"train": {**cfg["train"], "seed": 1}}, out=tmp_path / "alone")
    assert_same_weights(tmp_path / "rep" / "seed-1", alone.path)


def test_the_cli_prints_mean_and_spread(tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(_config()))
    res = CliRunner().invoke(app, ["train", str(tmp_path / "tiny.json"), "--repeats", "2", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "2 seeds, fused" in res.output and "mean ± std" in res.output and "recon_mse" in res.output


@pytest.mark.parametrize("args, message", [
    (["--repeats", "0"], "--repeats 0: expected at least 1"),
    (["--repeats", "2", "--resume", "x"], "--repeats: trains new runs; drop --resume"),
])
def test_bad_repeats_are_one_line(tmp_path, args, message):
    (tmp_path / "tiny.json").write_text(json.dumps(_config()))
    res = CliRunner().invoke(app, ["train", str(tmp_path / "tiny.json"), *args, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and message in " ".join(res.output.split()) and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


def test_an_output_that_holds_repeats_or_a_seeds_run_is_refused(tmp_path):
    aelab.train_repeats(_config(epochs=1), 2, out=tmp_path / "rep")
    with pytest.raises(AelabError, match="already holds repeated runs"):
        aelab.train_repeats(_config(epochs=1), 2, out=tmp_path / "rep")
    aelab.train(_config(epochs=1), out=tmp_path / "other" / "seed-0")
    with pytest.raises(AelabError, match="seed-0: already holds a run"):
        aelab.train_repeats(_config(epochs=1), 2, out=tmp_path / "other")


def test_a_failure_while_training_leaves_nothing_half_written(tmp_path, monkeypatch):
    from aelab.training import fused
    monkeypatch.setattr(fused.FusedGradientTrainer, "fit", lambda self, *a: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        aelab.train_repeats(_config(), 2, out=tmp_path / "rep")
    assert not (tmp_path / "rep").exists()


def test_models_past_the_cpu_size_limit_train_one_after_another(tmp_path, monkeypatch):
    """On the CPU a model past CPU_MAX_PARAMETERS does not fuse (a solo step
    is arithmetic-bound there): said in one line, the runs trained alone."""
    import aelab.fused_runs as fused_runs
    monkeypatch.setattr(fused_runs, "CPU_MAX_PARAMETERS", 100)
    with pytest.warns(UserWarning, match=r"2 runs trained one after another, not fused: [\d,]+ parameters per model"):
        summary = aelab.train_repeats(_config(), 2, out=tmp_path / "rep")
    assert summary["trained"] == "one after another"
