"""Studies end to end: strategies, resume, SIGKILL mid-trial, two processes on
one study, failed trials, bad input, and the shipped studies at reduced size."""
from __future__ import annotations

import copy
import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import killed, sigkill_when

from aelab.errors import ConfigError
from aelab.studies import prepare, run_study
from aelab.studies.runner import create_or_load

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def study(tiny) -> dict:
    """A 2 x 2 grid over the tiny digits AE, 2 seeds each, 2 epochs."""
    base = copy.deepcopy(tiny)
    base["train"]["epochs"] = 2
    return {"name": "t", "base": base, "space": {"model.latent_dim": [2, 3], "train.lr": [0.01, 0.02]},
            "objectives": {"recon_mse": "min"}, "repeats": 2, "strategy": "grid"}


def rows(study_dir: Path) -> list[dict]:
    with open(study_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def run_dirs(study_dir: Path) -> list[Path]:
    return sorted(p for p in (study_dir / "runs").iterdir() if p.is_dir())


def test_grid_runs_every_point_once_with_mean_and_std(study, tmp_path):
    result = run_study(study, out=tmp_path / "s")
    got = rows(result.path)
    assert len(got) == 4 and {r["status"] for r in got} == {"complete"}
    assert {(r["model.latent_dim"], r["train.lr"]) for r in got} == {("2", "0.01"), ("2", "0.02"),
                                                                     ("3", "0.01"), ("3", "0.02")}
    assert all(r["repeats"] == "2" and float(r["recon_mse_std"]) >= 0 for r in got)
    assert len(run_dirs(result.path)) == 8  # 4 configurations x 2 seeds, ordinary run dirs
    summary = (result.path / "summary.md").read_text()
    assert "latent_dim=3, lr=0.02" in summary and "±" in summary
    assert (result.path / "figures" / "bar_recon_mse.png").exists()


def test_running_again_continues_without_retraining(study, tmp_path):
    run_study(study, out=tmp_path / "s")
    stamps = {p: (p / "metrics.json").stat().st_mtime_ns for p in run_dirs(tmp_path / "s")}
    again = run_study(study, out=tmp_path / "s")
    assert len(again.rows) == 4
    assert {p: (p / "metrics.json").stat().st_mtime_ns for p in run_dirs(tmp_path / "s")} == stamps


def test_a_larger_budget_extends_a_random_study(study, tmp_path):
    study.update(strategy="random", repeats=1)
    study["space"]["train.lr"] = {"low": 0.001, "high": 0.05, "log": True}
    assert len(run_study(study, out=tmp_path / "s", trials=2).rows) == 2
    assert len(run_study(study, out=tmp_path / "s", trials=3).rows) == 3


@pytest.mark.parametrize("strategy", ["tpe", "nsga2"])
def test_model_based_strategies(study, tmp_path, strategy):
    study.update(strategy=strategy, repeats=1, trials=3,
                 objectives={"recon_mse": "min", "silhouette": "max"})
    study["space"]["train.lr"] = {"low": 0.001, "high": 0.05, "log": True}
    result = run_study(study, out=tmp_path / strategy)
    assert len(result.rows) == 3 and result.best
    assert (result.path / "figures" / "pareto.png").exists()


def test_failed_trials_are_recorded_and_the_study_goes_on(study, tmp_path):
    conv = {"type": "conv2d", "filters": 2, "kernel": 9}  # a 9x9 kernel cannot fit 8x8 digits
    study.update(repeats=1, space={"model.encoder": [[16], [conv]], "train.lr": [0.01, 1.0e9]})
    study["base"]["model"]["output_activation"] = "linear"
    study["base"]["train"]["optimizer"] = "sgd"
    got = {(r["model.encoder"], r["train.lr"]): r for r in rows(run_study(study, out=tmp_path / "s").path)}
    assert got[("[16]", "0.01")]["status"] == "complete"
    assert "diverged" in got[("[16]", "1000000000.0")]["fail_reason"]
    bad = [r for k, r in got.items() if "conv2d" in k[0]]
    assert all(r["status"] == "failed" and "model.encoder[0] (conv2d)" in r["fail_reason"] for r in bad)


def study_killed(study: dict, out, fuse: bool) -> int:
    """Run ``study`` in a child that SIGKILLs itself mid-trial: alone, one
    epoch into the first lr=0.02 run; fused, in the second epoch of a group
    with an lr=0.02 member (its members' epoch-1 checkpoints on disk)."""
    def work():
        import aelab.training.gradient as g
        from aelab.training.fused import FusedGradientTrainer
        sigkill_when(g.GradientTrainer, "train_epoch", lambda self, _, x, y, epoch: self.spec.lr == 0.02 and epoch == 0)
        sigkill_when(FusedGradientTrainer, "_train_epoch", lambda self, _, x, y, epochs: epochs[0] == 1 and any(
            self.trainers[k].spec.lr == 0.02 for k in self.active))
        run_study(study, out=out, fuse=fuse)
    return killed(work)


@pytest.mark.parametrize("fuse", [False, True])
def test_sigkill_mid_trial_is_retried_not_lost_nor_double_counted(study, tmp_path, fuse):
    """Alone, the killed trial is retried; fused, every trial of the killed
    batch is -- and the group resumes from its members' checkpoints to the
    very numbers of an uninterrupted study."""
    study["base"]["train"]["checkpoint_every"] = 1
    out = tmp_path / "s"
    assert study_killed(study, out, fuse) == -signal.SIGKILL
    if fuse:  # killed in epoch 2: the killed group's members hold their epoch-1 checkpoints
        kept = [d for d in run_dirs(out) if (d / "checkpoint.safetensors").exists()]
        assert len(kept) == 4 and not any((d / "metrics.json").exists() for d in kept)
    result = run_study(study, out=out, fuse=fuse)
    configs = [r.config for r in result.rows]
    assert len(configs) == 4 == len(set(configs)) and {r.state for r in result.rows} == {"complete"}
    storage_trials = create_or_load(prepare(study, out)).get_trials()
    failed = [t for t in storage_trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == (4 if fuse else 1) and all("died" in t.user_attrs["fail_reason"] for t in failed)
    assert all(any(t.user_attrs.get("retry_of") == f.number for t in storage_trials) for f in failed)
    assert len(run_dirs(out)) == 8  # the interrupted runs were resumed, not duplicated
    if fuse:
        whole = run_study(study, out=tmp_path / "whole")
        numbers = lambda res: {r.config: [{k: v for k, v in m.items() if k != "seconds"} for m in r.per_seed]
                               for r in res.rows}  # noqa: E731
        assert numbers(result) == numbers(whole)


def test_two_processes_on_one_study_cooperate(study, tmp_path):
    out = tmp_path / "s"
    cmd = [sys.executable, "-c", "import json,sys; from aelab.studies import run_study; "
           "run_study(json.loads(sys.argv[1]), out=sys.argv[2])", json.dumps(study), str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    everything = create_or_load(prepare(study, out)).get_trials()
    # When both pop the last queued point at once, Optuna hands the loser a
    # freshly sampled trial: it must be pruned as over budget, never trained.
    extra = [t for t in everything if t.user_attrs.get("over_budget")]
    assert all(t.state == optuna.trial.TrialState.PRUNED and not t.params for t in extra)
    trials = [t for t in everything if not t.user_attrs.get("over_budget")]
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({(t.params["model.latent_dim"], t.params["train.lr"]) for t in trials}) == 4
    assert len(run_study(study, out=out).rows) == 4
    assert len(run_dirs(out)) == 8  # every configuration trained once per seed, by one of the two


def test_workers_option_runs_parallel_processes(study, tmp_path):
    study["repeats"] = 1
    result = run_study(study, out=tmp_path / "s", workers=2)
    assert len(result.rows) == 4 and {r.state for r in result.rows} == {"complete"}


@pytest.mark.parametrize("change, needle", [
    (lambda s: s["space"].update({"train.epochz": [1, 2]}), "space.train.epochz"),
    (lambda s: s.update(space={}), "space: is empty"),
    (lambda s: s.update(objectives={"recon_msee": "min"}), "objectives.recon_msee"),
    (lambda s: s["space"].update({"train.optimizer": ["adam", "adamm"]}), "space.train.optimizer"),
    (lambda s: s.update(strategy="annealing"), "strategy"),
    (lambda s: s.update(objectives={"recon_mse": "down"}), "objectives.recon_mse"),
])
def test_bad_study_files_fail_in_one_line_writing_nothing(study, tmp_path, change, needle):
    change(study)
    with pytest.raises(ConfigError) as e:
        run_study(study, out=tmp_path / "s")
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "s").exists()


def test_grid_larger_than_budget_and_bad_storage(study, tmp_path):
    with pytest.raises(ConfigError, match="4 configurations do not fit in --trials 3"):
        run_study(study, out=tmp_path / "s", trials=3)
    with pytest.raises(ConfigError, match="--storage"):
        run_study(study, out=tmp_path / "s2", storage="sqlite:////nonexistent-dir/x/y.db")
    with pytest.raises(ConfigError, match="--storage"):
        run_study(study, out=tmp_path / "s3", storage="redis://localhost")
    assert not (tmp_path / "s").exists() and not (tmp_path / "s3").exists()


def test_sqlite_storage_and_changed_study_file(study, tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study["repeats"] = 1
    assert len(run_study(study, out=tmp_path / "s", storage=url).rows) == 4
    study["space"]["model.latent_dim"] = [2, 4]
    with pytest.raises(ConfigError, match="another study file"):  # the study directory says so
        run_study(study, out=tmp_path / "s", storage=url)
    with pytest.raises(ConfigError, match="different study file"):  # and so does the storage
        run_study(study, out=tmp_path / "s2", storage=url)


@pytest.mark.parametrize("name, reduce", [
    ("optimizers", ["train.epochs=3"]),
    ("hidden-layers", ["train.epochs=2", "data.samples=600"]),
])
def test_shipped_studies_at_reduced_size(tmp_path, name, reduce):
    spec = yaml.safe_load((ROOT / "studies" / f"{name}.yaml").read_text())
    spec["base"] = str((ROOT / "studies" / spec["base"]).resolve())
    spec["set"] = reduce
    spec["repeats"] = 1
    result = run_study(spec, out=tmp_path / name)
    assert result.rows and {r.state for r in result.rows} == {"complete"}
    figures = {p.name for p in (result.path / "figures").iterdir()}
    assert f"bar_{next(iter(spec['objectives']))}.png" in figures
    if name == "hidden-layers":
        assert {"reconstructions.png", "latent_spaces.png"} <= figures


STUDY_FILES = [p for p in sorted((ROOT / "studies").glob("*.yaml")) if yaml.safe_load(p.read_text()).get("kind") != "lso"]


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_every_shipped_study_file_validates(path, tmp_path):
    ctx = prepare(path, tmp_path / "s")
    assert (ctx.params or ctx.proposer.label_column) and ctx.budget >= 1
    assert not (tmp_path / "s").exists()  # validating writes nothing


def test_a_study_half_created_by_a_dead_process_is_finished_by_the_next(study, tmp_path, monkeypatch):
    import aelab.studies.runner as runner
    ctx = prepare(study, tmp_path / "s")
    storage = runner.open_storage(ctx.storage_url, ctx.study_dir)
    optuna.create_study(storage=storage, study_name=ctx.name, directions=ctx.directions)  # then "died"
    monkeypatch.setattr(runner, "CREATE_SECONDS", 0.5)
    loaded = create_or_load(ctx)
    assert loaded.user_attrs["aelab_fingerprint"] == ctx.fingerprint
    waiting = [t for t in loaded.get_trials() if t.state == optuna.trial.TrialState.WAITING]
    assert len(waiting) == len(runner.get_strategy("grid").queued(ctx.params)) > 0


def test_an_lso_experiment_file_is_pointed_to_its_command(tmp_path):
    with pytest.raises(ConfigError, match="aelab lso-study"):
        prepare(ROOT / "studies" / "lso-paper.yaml", tmp_path / "s")
