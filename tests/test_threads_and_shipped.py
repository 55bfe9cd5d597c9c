"""The one threads setting (precedence, parsing, the busy warning, OpenMP's
wait policy) and the shipped configs and studies reachable by name."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import aelab
from aelab import threads
from aelab.cli import app
from aelab.errors import ConfigError
from aelab.shipped import catalog, folder, resolve
from conftest import one_line_error

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_threads(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "_forced", [])
    monkeypatch.setattr(threads, "_share", [])


def test_precedence_forced_then_config_then_env_then_share_then_fallback_then_auto(monkeypatch):
    monkeypatch.setattr(threads, "load", lambda: 0.0)
    monkeypatch.setattr(threads, "cpus", lambda: 8)
    assert threads.resolve() == 8 and threads.resolve("auto") == 8
    assert threads.resolve(fallback=1) == 1
    with threads.share(4):
        assert threads.resolve() == 4 and threads.resolve(fallback=1) == 4
        monkeypatch.setenv(threads.ENV, "3")
        assert threads.resolve() == 3 and threads.resolve("auto") == 3
        assert threads.resolve(2) == 2
        threads.force("5")
        assert threads.resolve(2) == 5 and os.environ[threads.ENV] == "5"


@pytest.mark.parametrize("load, cpus, expected", [(0.0, 2, 2), (1.0, 2, 1), (1.6, 2, 1), (7.9, 2, 1), (0.4, 4, 4)])
def test_auto_leaves_the_busy_cores_to_others(monkeypatch, load, cpus, expected):
    """``load`` is how many CPUs other processes use (measured in the next test)."""
    monkeypatch.setattr(threads, "load", lambda: load)
    monkeypatch.setattr(threads, "cpus", lambda: cpus)
    assert threads.auto() == expected


def test_load_sees_a_busy_process_at_once():
    """Unlike the 1-minute load average, which lags a job that just started."""
    quiet = threads.load()
    threads._measured.clear()
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time
        time.sleep(0.3)
        busy = threads.load(0.3)
    finally:
        burner.kill()
    assert 0.0 <= quiet <= threads.cpus() and busy >= 0.7, (quiet, busy)


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", " 2x", True])
def test_bad_thread_counts_are_one_line(monkeypatch, bad):
    with pytest.raises(ConfigError, match="expected a number of threads"):
        threads.parse(bad, "--threads")
    monkeypatch.setenv(threads.ENV, str(bad))
    with pytest.raises(ConfigError, match=r"\$AELAB_THREADS"):
        threads.resolve()


def test_bad_threads_in_a_config_and_on_the_command_line(tiny, tmp_path):
    tiny["train"]["threads"] = 0
    with pytest.raises(ConfigError, match="train.threads"):
        aelab.load_config(tiny)
    line = one_line_error(runner.invoke(app, ["--threads", "zero", "datasets"]))
    assert "--threads" in line


def test_busy_warning_only_when_oversubscribed(monkeypatch):
    monkeypatch.setattr(threads, "cpus", lambda: 2)
    monkeypatch.setattr(threads, "load", lambda: 0.5)
    assert threads.busy_warning(2) is None
    monkeypatch.setattr(threads, "load", lambda: 4.0)
    line = threads.busy_warning(1)
    assert "other processes use 4.0 of 2 CPUs" in line and "1 torch thread " in line


def test_a_run_records_the_threads_it_used(tiny, tmp_path):
    tiny["train"]["threads"] = 1
    assert aelab.train(tiny, out=tmp_path / "run").metrics["threads"] == 1


def test_openmp_spins_briefly_unless_the_user_chose():
    code = "import os, aelab, torch; print(os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    run = lambda extra: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: E731
                                       env=env | extra).stdout.strip()
    assert run({}) == str(threads.SPIN)
    assert run({"GOMP_SPINCOUNT": "100"}) == "100"
    assert run({"OMP_WAIT_POLICY": "PASSIVE"}) == "None"


# ---------------------------------------------------------------- shipped


def test_every_shipped_file_is_listed_with_a_description():
    entries = catalog()
    names = {(e.kind, e.name) for e in entries}
    assert ("config", "mnist-vae") in names and ("study", "optimizers") in names and ("study", "lso-paper") in names
    assert all(e.description and len(e.description) <= 82 for e in entries)
    r = runner.invoke(app, ["configs"])
    assert r.exit_code == 0 and "mnist-vae" in r.output and "optimizers" in r.output


def test_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("mnist-vae") == folder("config") / "mnist-vae.yaml"
    assert resolve("mnist-vae.yaml") == folder("config") / "mnist-vae.yaml"
    assert resolve("optimizers", "study") == folder("study") / "optimizers.yaml"
    assert aelab.load_config("digits-ae").name == "digits-ae"
    from aelab.studies import prepare
    assert prepare("optimizers").name == "optimizers"
    from aelab.lso.study import load_study
    spec, base = load_study("lso-paper")
    assert (base / spec.classifier).is_file()


def test_an_existing_path_wins_over_a_shipped_name(tmp_path, monkeypatch, tiny):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist-vae").write_text("name: mine\n")
    assert resolve("mnist-vae") == tmp_path / "mnist-vae" or resolve("mnist-vae").name == "mnist-vae"
    assert aelab.load_config("mnist-vae").name == "mine"


def test_an_unknown_name_lists_what_is_shipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(runner.invoke(app, ["train", "mnist-vea"]))
    assert "no shipped config of that name" in line and "mnist-vae" in line
    line = one_line_error(runner.invoke(app, ["study", "run", "optimisers"]))
    assert "no shipped study" in line and "optimizers" in line


def test_config_yaml_records_the_count_so_a_resume_reuses_it(tiny, tmp_path, monkeypatch):
    """Thread counts change a result's last bits: auto is resolved once, at the start."""
    import yaml
    monkeypatch.setattr(threads, "auto", lambda: 2)
    run = aelab.train(tiny, out=tmp_path / "run")
    assert yaml.safe_load((run.path / "config.yaml").read_text())["train"]["threads"] == 2
    monkeypatch.setattr(threads, "auto", lambda: 1)
    (run.path / "metrics.json").unlink()
    assert aelab.train(resume=run.path).metrics["threads"] == 2
