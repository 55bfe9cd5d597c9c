"""Studies at cluster scale: PostgreSQL storage shared by worker processes,
one of them SIGKILLed mid-trial (recovered exactly once, by its pid or by its
heartbeat), and unreachable databases / Ray addresses as one line.

The PostgreSQL tests need a server: ``.ci/postgres.sh`` starts one and sets
``AELAB_TEST_POSTGRES_URL`` (``bash .ci/postgres.sh .venv/bin/python -m pytest
tests/test_cluster.py`` locally).  Without it they skip, except under CI,
where a missing server is a failure, never a silent skip.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from aelab.cli import app
from conftest import one_line_error
from aelab.errors import ConfigError
from aelab.studies import prepare, run_study
from aelab.studies.executors import LocalExecutor
from aelab.studies.runner import create_or_load
from aelab.studies.storage import open_storage

GRACE = 5  # heartbeat grace (s) for these tests; heartbeats every second

WORKER = r"""
import json, os, signal, sys
import aelab.studies.objective as objective
if sys.argv[3] != "live":  # this worker dies one epoch into its first run (or its first fused group)
    import aelab.training.gradient as g
    from aelab.training.fused import FusedGradientTrainer as F
    original, fused = g.GradientTrainer.train_epoch, F._train_epoch
    def train_epoch(self, *args):
        original(self, *args)
        os.kill(os.getpid(), signal.SIGKILL)
    def fused_epoch(self, *args):
        fused(self, *args)
        os.kill(os.getpid(), signal.SIGKILL)
    g.GradientTrainer.train_epoch, F._train_epoch = train_epoch, fused_epoch
if sys.argv[3] == "dies-on-another-host":  # its pid means nothing here: only its heartbeat can tell
    objective.worker_id = lambda: f"another-host:{os.getpid()}:0"
import aelab.studies.figures
aelab.studies.figures.study_figures = lambda *a, **k: []  # not what this test is about
from aelab.studies import run_study
from aelab.studies.executors import LocalExecutor
run_study(json.loads(sys.argv[1]), out=sys.argv[2], storage=os.environ["AELAB_TEST_POSTGRES_URL"],
          executor=LocalExecutor(1, threads=1), fuse=sys.argv[4] == "fuse")  # two such processes share the two cores
"""


@pytest.fixture(autouse=True)
def no_study_figures(monkeypatch):
    """Study figures are tested in test_study_figures.py; here they only cost time."""
    monkeypatch.setattr("aelab.studies.figures.study_figures", lambda *a, **k: [])


@pytest.fixture
def pg_url(monkeypatch) -> str:
    url = os.environ.get("AELAB_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("CI: AELAB_TEST_POSTGRES_URL is not set; .ci/run must start PostgreSQL (.ci/postgres.sh)")
        pytest.skip("no PostgreSQL: run under `bash .ci/postgres.sh ...` to set AELAB_TEST_POSTGRES_URL")
    monkeypatch.setenv("AELAB_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("AELAB_HEARTBEAT_GRACE", str(GRACE))
    return url


@pytest.fixture
def study(tiny) -> dict:
    """A 2 x 2 grid, 2 seeds per configuration (8 runs), checkpoints every epoch;
    a fresh name per test, since the database outlives the test."""
    base = copy.deepcopy(tiny)
    base["train"].update(epochs=2, checkpoint_every=1)
    base["data"]["samples"] = 400
    return {"name": f"cluster-{uuid.uuid4().hex[:8]}", "base": base,
            "space": {"model.latent_dim": [2, 3], "train.lr": [0.01, 0.02]},
            "objectives": {"recon_mse": "min"}, "repeats": 2, "strategy": "grid"}


def run_seeds(study_dir: Path) -> list[tuple]:
    """(latent_dim, lr, seed) of every run directory that finished."""
    out = []
    for d in sorted((study_dir / "runs").iterdir()):
        if d.is_dir():
            assert (d / "metrics.json").exists(), f"{d} never finished"
            cfg = yaml.safe_load((d / "config.yaml").read_text())
            out.append((cfg["model"]["latent_dim"], cfg["train"]["lr"], cfg["train"]["seed"]))
    return out


@pytest.mark.parametrize("dying", ["dies-here", "dies-on-another-host"])
def test_two_workers_on_postgres_one_sigkilled_every_trial_once(pg_url, study, tmp_path, dying):
    out = tmp_path / "s"
    cmd = [sys.executable, "-c", WORKER, json.dumps(study), str(out)]
    procs = [subprocess.Popen(cmd + [mode, "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for mode in (dying, "live")]  # run by run: one trial dies (fused, below: a batch)
    errs = [p.communicate(timeout=240)[1].decode() for p in procs]
    assert procs[0].returncode == -signal.SIGKILL, errs[0]
    assert procs[1].returncode == 0, errs[1]
    if dying == "dies-on-another-host":
        time.sleep(GRACE + 1)  # let its last heartbeat go stale before the study continues
    result = run_study(study, out=out, storage=pg_url, executor=LocalExecutor(1, threads=1),
                       fuse=False)  # continue

    assert sorted(r.config for r in result.rows) == ["latent_dim=2, lr=0.01", "latent_dim=2, lr=0.02",
                                                    "latent_dim=3, lr=0.01", "latent_dim=3, lr=0.02"]
    assert {r.state for r in result.rows} == {"complete"}
    trials = create_or_load(prepare(study, out, pg_url)).get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1  # the killed trial, and nothing else
    retries = [t for t in trials if t.user_attrs.get("retry_of") == failed[0].number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE  # retried exactly once
    if dying == "dies-here":
        assert "died" in failed[0].user_attrs["fail_reason"]
    else:
        assert "heartbeat" in retries[0].user_attrs["retry_reason"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 == len({tuple(sorted(t.params.items())) for t in complete})
    seeds = run_seeds(out)  # every (configuration, seed) trained exactly once: none lost, none twice
    assert len(seeds) == 8 == len(set(seeds))


def test_a_fused_batch_on_postgres_whose_worker_vanished_is_recovered_by_its_heartbeats(pg_url, study, tmp_path):
    """A worker on "another host" takes the whole grid as one fused batch and
    dies in its first fused epoch: only the heartbeats it kept for each of
    its trials can tell; every trial is retried once, none is lost or doubled."""
    out = tmp_path / "s"
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(study), str(out), "dies-on-another-host",
                           "fuse"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "Heartbeat" not in proc.stderr  # optuna's warning about ask() with heartbeats is not the user's business
    time.sleep(GRACE + 1)
    result = run_study(study, out=out, storage=pg_url, executor=LocalExecutor(1, threads=1))
    assert {r.state for r in result.rows} == {"complete"} and len(result.rows) == 4
    trials = create_or_load(prepare(study, out, pg_url)).get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 4  # the whole batch
    for f in failed:
        retries = [t for t in trials if t.user_attrs.get("retry_of") == f.number]
        assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
        assert "heartbeat" in retries[0].user_attrs["retry_reason"]
    seeds = run_seeds(out)
    assert len(seeds) == 8 == len(set(seeds))


def test_postgres_results_match_the_journal(pg_url, study, tmp_path):
    """The storage changes where trials are recorded, never what they compute."""
    study["repeats"] = 1
    journal = run_study(study, out=tmp_path / "j", executor=LocalExecutor(1, threads=1))
    pg = run_study(study, out=tmp_path / "p", storage=pg_url, workers=2)
    metrics = lambda r: {row.config: row.per_seed[0]["recon_mse"] for row in r.rows}
    assert metrics(pg) == pytest.approx(metrics(journal), rel=1e-6)
    # Another host with its own --out (no run directories): the same results, from the storage alone.
    elsewhere = run_study(study, out=tmp_path / "elsewhere", storage=pg_url)
    assert metrics(elsewhere) == metrics(pg) and not list((tmp_path / "elsewhere").glob("runs/*/metrics.json"))
    assert (tmp_path / "elsewhere" / "results.csv").read_text() == (tmp_path / "p" / "results.csv").read_text()


# ------------------------------------------------------------- bad input

runner = CliRunner()


def closed_port() -> int:
    """A localhost port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def study_file(study, tmp_path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_unreachable_database_is_one_line_and_writes_nothing(study_file, tmp_path):
    url = f"postgresql://aelab:s3cret@127.0.0.1:{closed_port()}/studies"
    line = one_line_error(runner.invoke(app, ["study", "run", str(study_file), "--out", str(tmp_path / "s"),
                                              "--storage", url]))
    assert "--storage postgresql://aelab:***@127.0.0.1" in line and "cannot open" in line
    assert "s3cret" not in line and not (tmp_path / "s").exists()


def test_a_silent_database_server_is_given_up_on_after_the_connect_timeout(study, tmp_path, monkeypatch):
    """A host that accepts the connection and never answers: bounded by
    AELAB_CONNECT_TIMEOUT instead of hanging."""
    monkeypatch.setenv("AELAB_CONNECT_TIMEOUT", "2")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever replies
        url = f"postgresql://aelab@127.0.0.1:{silent.getsockname()[1]}/studies"
        with pytest.raises(ConfigError, match=r"--storage postgresql://aelab@127.0.0.1:\d+/studies: cannot open.*timeout"):
            run_study(study, out=tmp_path / "s", storage=url)
    assert not (tmp_path / "s").exists()


def test_missing_database_driver_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if aelab[postgres] were not installed
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(ConfigError, match=r"needs the psycopg driver \(pip install 'aelab\[postgres\]'\)"):
        open_storage("postgresql://aelab@127.0.0.1:5432/studies", tmp_path)


@pytest.mark.parametrize("address, needle", [
    (lambda: f"127.0.0.1:{closed_port()}", "no Ray cluster reachable there"),
    (lambda: f"ray://127.0.0.1:{closed_port()}", "no Ray cluster reachable there"),
    (lambda: "127.0.0.1:notaport", "expected auto, HOST:PORT or ray://HOST:PORT"),
])
def test_unreachable_ray_address_is_one_line_and_writes_nothing(study_file, tmp_path, address, needle):
    addr = address()
    line = one_line_error(runner.invoke(app, ["study", "run", str(study_file), "--out", str(tmp_path / "s"),
                                              "--executor", "ray", "--address", addr]))
    assert f"--address {addr}: {needle}" in line
    assert not (tmp_path / "s").exists()


RACE = r"""
import sys
from pathlib import Path
from aelab.studies.storage import open_storage
open_storage(sys.argv[1], Path(sys.argv[2]))
"""


def test_processes_meeting_an_empty_database_all_open_it(pg_url, tmp_path):
    """Every process finding no schema creates Optuna's tables; the losers of
    that race ("already exists") must open the winner's schema, not fail."""
    import psycopg
    from sqlalchemy.engine import make_url
    name = f"race_{uuid.uuid4().hex[:8]}"
    admin = make_url(pg_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    procs = [subprocess.Popen([sys.executable, "-c", RACE, url, str(tmp_path)], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
