"""The executor contract: one set of tests run against every executor
(local in-process, local forked workers, Ray tasks on a local Ray instance),
and a Ray study whose results match the same study run by local workers."""
from __future__ import annotations

import copy
import socket

import optuna
import pytest
import ray
from optuna.trial import TrialState

from aelab.errors import ConfigError
from aelab.studies import prepare, run_study
from aelab.studies.executors import LocalExecutor, RayExecutor, make_executor
from aelab.studies.runner import create_or_load



@pytest.fixture
def study(tiny) -> dict:
    """A 2 x 2 grid over the tiny digits AE, one seed each, 2 epochs."""
    base = copy.deepcopy(tiny)
    base["train"]["epochs"] = 2
    base["data"]["samples"] = 400
    return {"name": "t", "base": base, "space": {"model.latent_dim": [2, 3], "train.lr": [0.01, 0.02]},
            "objectives": {"recon_mse": "min"}, "repeats": 1, "strategy": "grid"}


@pytest.fixture(autouse=True)
def no_study_figures(monkeypatch):
    """Study figures are tested in test_study_figures.py; here they only cost time."""
    monkeypatch.setattr("aelab.studies.figures.study_figures", lambda *a, **k: [])


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (start-up costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module", params=["local", "ray"])
def executor(request):
    """Every executor (local: two forked workers; test_studies.py covers the
    in-process one); module scope so pytest runs the Ray ones together, last."""
    if request.param == "ray":
        request.getfixturevalue("local_ray")
        return RayExecutor(tasks=2)
    return LocalExecutor(2)


def run_dirs(study_dir) -> list:
    return sorted(p for p in (study_dir / "runs").iterdir() if p.is_dir())


def stored(study, out) -> list[optuna.trial.FrozenTrial]:
    return create_or_load(prepare(study, out)).get_trials()


# --------------------------------------------------------------- contract


def test_every_grid_point_runs_exactly_once(executor, study, tmp_path):
    result = run_study(study, out=tmp_path / "s", executor=executor)
    assert sorted(r.config for r in result.rows) == ["latent_dim=2, lr=0.01", "latent_dim=2, lr=0.02",
                                                    "latent_dim=3, lr=0.01", "latent_dim=3, lr=0.02"]
    assert {r.state for r in result.rows} == {"complete"}
    assert len(run_dirs(result.path)) == 4
    trained = [t for t in stored(study, tmp_path / "s") if t.state == TrialState.COMPLETE]
    assert len(trained) == 4  # raced extras, if any, were pruned, never trained


def test_continuing_a_finished_study_trains_nothing(executor, study, tmp_path):
    run_study(study, out=tmp_path / "s", executor=LocalExecutor(1))
    before = stored(study, tmp_path / "s")
    stamps = {p: (p / "metrics.json").stat().st_mtime_ns for p in run_dirs(tmp_path / "s")}
    assert len(run_study(study, out=tmp_path / "s", executor=executor).rows) == 4
    assert len(stored(study, tmp_path / "s")) == len(before)
    assert {p: (p / "metrics.json").stat().st_mtime_ns for p in run_dirs(tmp_path / "s")} == stamps


def test_a_sampled_budget_is_met_exactly(executor, study, tmp_path):
    study.update(strategy="random", trials=3)
    study["space"]["train.lr"] = {"low": 0.001, "high": 0.05, "log": True}
    result = run_study(study, out=tmp_path / "s", executor=executor)
    assert len(result.rows) == 3 and {r.state for r in result.rows} == {"complete"}
    assert len(run_dirs(result.path)) == 3


def test_a_dead_workers_trial_is_retried_exactly_once(executor, study, tmp_path):
    """A RUNNING trial whose worker (a pid on this host) is gone: recovered, not lost."""
    ctx = prepare(study, tmp_path / "s")
    live = create_or_load(ctx)
    dead = live.ask()  # pops the first queued grid point, as a worker would
    dead.set_user_attr("worker", f"{socket.gethostname()}:{2 ** 22 + 12345}:1")
    result = run_study(study, out=tmp_path / "s", executor=executor)
    assert len({r.config for r in result.rows}) == 4 == len(result.rows)
    assert {r.state for r in result.rows} == {"complete"}
    trials = stored(study, tmp_path / "s")
    assert trials[dead.number].state == TrialState.FAIL
    assert "died" in trials[dead.number].user_attrs["fail_reason"]
    assert sum(t.user_attrs.get("retry_of") == dead.number for t in trials) == 1


def test_failed_trials_are_recorded_and_the_study_goes_on(executor, study, tmp_path):
    study["space"]["train.lr"] = [0.01, 1.0e9]
    study["base"]["model"]["output_activation"] = "linear"
    study["base"]["train"]["optimizer"] = "sgd"
    result = run_study(study, out=tmp_path / "s", executor=executor)
    states = {r.config: r.state for r in result.rows}
    assert states == {"latent_dim=2, lr=0.01": "complete", "latent_dim=2, lr=1e+09": "failed",
                      "latent_dim=3, lr=0.01": "complete", "latent_dim=3, lr=1e+09": "failed"}
    assert all("diverged" in r.fail_reason for r in result.rows if r.state == "failed")


# ------------------------------------------------------------- Ray vs local


def test_ray_results_match_local_workers(study, tmp_path, local_ray):
    """Same study, same seeds: the Ray executor's metrics are the local workers'."""
    study["repeats"] = 2
    local = run_study(study, out=tmp_path / "local", executor=LocalExecutor(2))
    remote = run_study(study, out=tmp_path / "ray", executor=RayExecutor(tasks=2, cpus=1))

    def by_config(result):
        return {r.config: [{k: v for k, v in m.items() if k != "seconds"} for m in r.per_seed]
                for r in result.rows}

    assert len(remote.rows) == 4 and {r.state for r in remote.rows} == {"complete"}
    assert by_config(remote).keys() == by_config(local).keys()
    for config, seeds in by_config(local).items():
        for mine, theirs in zip(by_config(remote)[config], seeds):
            assert mine == pytest.approx(theirs, rel=1e-6), config


# ------------------------------------------------------------- bad options


@pytest.mark.parametrize("kwargs, needle", [
    (dict(name="dask"), "--executor dask: expected one of local, ray"),
    (dict(name="local", address="auto"), "need --executor ray"),
    (dict(name="local", workers=0), "--workers: expected at least 1"),
    (dict(name="ray", cpus=0), "--cpus-per-trial: expected a number > 0"),
    (dict(name="ray", gpus=-0.5), "--gpus-per-trial: expected a number >= 0"),
    (dict(name="ray", workers=0), "--workers: expected at least 1 trial in flight"),
])
def test_bad_executor_options_fail_in_one_line(kwargs, needle):
    with pytest.raises(ConfigError, match=needle) as e:
        make_executor(**kwargs)
    assert "\n" not in str(e.value)
