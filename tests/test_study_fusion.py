"""Studies fuse by themselves (issue 17): a grid's queued trials are taken
together and the runs whose models stack train as one batched model -- each
still its own run directory, with the very numbers of the unfused study."""
from __future__ import annotations

import copy

import pytest
from conftest import TINY
from typer.testing import CliRunner

import aelab.fused_runs as fused_runs
from aelab.cli import app
from aelab.studies import run_study


@pytest.fixture
def study() -> dict:
    """2 architectures x 3 optimizer settings, 2 seeds: two fusable groups of 6."""
    base = copy.deepcopy(TINY)
    base["train"]["epochs"] = 3
    return {"name": "f", "base": base, "repeats": 2, "strategy": "grid",
            "space": {"model.latent_dim": [2, 3], "train.optimizer,train.lr": [["adam", 0.01], ["adam", 0.003],
                                                                                ["rmsprop", 0.005]]},
            "objectives": {"recon_mse": "min"}}


@pytest.fixture
def groups(monkeypatch) -> list[int]:
    """The sizes of the groups trained fused."""
    sizes, original = [], fused_runs._fused

    def spy(group):
        runs = original(group)
        if runs is not None:
            sizes.append(len(group))
        return runs
    monkeypatch.setattr(fused_runs, "_fused", spy)
    return sizes


def numbers(result) -> dict:
    """Each trial's per-seed metrics, wall time aside."""
    return {r.config: [{k: v for k, v in m.items() if k != "seconds"} for m in r.per_seed] for r in result.rows}


def test_a_fused_study_equals_the_same_study_trained_run_by_run(study, tmp_path, groups):
    fused = run_study(study, out=tmp_path / "fused")
    assert sorted(groups) == [6, 6]  # one group per architecture, every seed and optimizer setting in it
    groups.clear()
    alone = run_study(study, out=tmp_path / "alone", fuse=False)
    assert groups == []
    assert numbers(fused) == numbers(alone) and len(fused.rows) == 6
    assert {r.state for r in fused.rows} == {"complete"}
    assert len(list((tmp_path / "fused" / "runs").glob("*/metrics.json"))) == 12  # ordinary run directories


def test_fuse_false_in_the_study_file_and_the_no_fuse_flag_train_run_by_run(study, tmp_path, groups):
    run_study(study | {"fuse": False}, out=tmp_path / "a")
    path = tmp_path / "study.yaml"
    import yaml
    path.write_text(yaml.safe_dump(study))
    result = CliRunner().invoke(app, ["study", "run", str(path), "--out", str(tmp_path / "b"), "--no-fuse"])
    assert result.exit_code == 0, result.output
    assert groups == []
    result = CliRunner().invoke(app, ["study", "run", str(path), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert sorted(groups) == [6, 6]


def test_a_diverging_and_an_unbuildable_trial_fail_alone_in_a_fused_batch(study, tmp_path):
    """A member that diverges fails its trial only; a configuration that
    cannot be built fails before its batch trains and takes nothing down."""
    study["space"] = {"model.output_activation,train.optimizer,train.lr": [
        ["linear", "sgd", 1e8], ["linear", "adam", 0.01], ["linear", "sgd", 0.05]],
        "model.encoder": [[16], [{"type": "conv2d", "filters": 2, "kernel": 99}]]}
    result = run_study(study, out=tmp_path / "s")
    by = {(str(r.values["model.output_activation,train.optimizer,train.lr"][2]),
           str(r.values["model.encoder"])): r for r in result.rows}
    assert len(by) == 6, by.keys()
    assert by[("100000000.0", "[16]")].state == "failed" and "diverged" in by[("100000000.0", "[16]")].fail_reason
    assert by[("0.01", "[16]")].state == by[("0.05", "[16]")].state == "complete"
    assert all(r.state == "failed" for (_, enc), r in by.items() if enc != "[16]")


def test_every_run_directory_of_a_fused_group_is_an_ordinary_run(study, tmp_path):
    """History, checkpoint, model, metrics and report per member, as a solo run writes them."""
    result = run_study(study, out=tmp_path / "s")
    for d in (tmp_path / "s" / "runs").iterdir():
        if d.is_dir():
            assert {p.name for p in d.iterdir()} >= {"config.yaml", "history.csv", "checkpoint.safetensors",
                                                     "model.safetensors", "metrics.json", "report.md"}
    assert all(len(r.runs) == 2 for r in result.rows)


def test_a_random_search_takes_its_draws_together_with_the_trials_of_one_by_one(study, tmp_path, groups):
    """Random draws never read results, so a worker asks the budget's draws
    at once and fuses their runs; the trials (values, numbers, order) are
    the ones drawn one at a time."""
    study = study | {"strategy": "random", "trials": 4, "space": {
        "train.lr": {"low": 0.001, "high": 0.01, "log": True}, "train.optimizer": ["adam", "rmsprop"]}}
    fused = run_study(study, out=tmp_path / "fused")
    assert groups == [8]  # 4 trials x 2 seeds of one architecture
    groups.clear()
    alone = run_study(study, out=tmp_path / "alone", fuse=False)
    assert groups == []
    assert [r.values for r in fused.rows] == [r.values for r in alone.rows]
    assert numbers(fused) == numbers(alone) and {r.state for r in fused.rows} == {"complete"}


def test_a_sampler_that_reads_results_proposes_one_trial_at_a_time(study, tmp_path, groups):
    """TPE's next draw depends on the last result: only each trial's seeds fuse."""
    study = study | {"strategy": "tpe", "trials": 3, "space": {"train.lr": {"low": 0.001, "high": 0.01}}}
    result = run_study(study, out=tmp_path / "tpe")
    assert groups == [2, 2, 2] and len(result.rows) == 3
