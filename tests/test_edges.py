"""aelab at its edges: every bad input and fault is one line, exit 2, and
nothing half-written -- output places, config values, labels, damaged run
files, memory, two writers, signals."""
from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import aelab
from aelab.cli import app
from aelab.outdir import LOCK, exclusive
from conftest import TINY, one_line_error

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
UNWRITABLE = Path("/sys/aelab-test-out")  # refused even for root (sysfs)


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def cfg_file(tiny, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One finished tiny run; tests damage copies of it."""
    out = tmp_path_factory.mktemp("edges") / "run"
    aelab.train(copy.deepcopy(TINY) | {"train": {**TINY["train"], "epochs": 2}}, out=out)
    return out


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edges") / "clf"
    aelab.train(copy.deepcopy(TINY) | {"model": {"kind": "classifier", "encoder": [16]},
                                       "train": {**TINY["train"], "epochs": 2}}, out=out)
    return out


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst


def listing(path: Path) -> dict:
    """Every file under ``path`` with its bytes: 'nothing written' compares these."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------- output places


def _bad_places(tmp_path: Path) -> dict[str, Path]:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    places = {"is a file": blocker, "under a file": blocker / "sub" / "out"}
    if UNWRITABLE.parent.is_dir() and not os.access(UNWRITABLE.parent, os.W_OK | os.X_OK) or os.geteuid() == 0:
        places["unwritable"] = UNWRITABLE
    return places


@pytest.mark.parametrize("case", ["is a file", "under a file", "unwritable"])
def test_train_output_places_are_one_line(cfg_file, tmp_path, case):
    place = _bad_places(tmp_path).get(case)
    if place is None:
        pytest.skip("no unwritable place on this machine")
    before = listing(tmp_path)
    line = one_line_error(cli("train", cfg_file, "--out", place, "--quiet"))
    assert str(place) in line
    assert listing(tmp_path) == before


@pytest.mark.parametrize("case", ["is a file", "under a file", "unwritable"])
def test_study_and_lso_output_places_are_one_line(tmp_path, case, classifier):
    place = _bad_places(tmp_path).get(case)
    if place is None:
        pytest.skip("no unwritable place on this machine")
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({"name": "s", "base": TINY, "space": {"train.lr": [0.01]},
                                     "objectives": {"recon_mse": "min"}, "strategy": "grid"}))
    before = listing(tmp_path)
    assert str(place) in one_line_error(cli("study", "run", study, "--out", place))
    assert str(place) in one_line_error(cli("lso", "--space", "pixels", "--classifier", classifier,
                                            "--target", "1", "--out", place))
    assert listing(tmp_path) == before


def test_report_output_places(run_copy, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "a-file" in one_line_error(cli("report", run_copy, "--out", blocker / "r.html"))
    assert "is a directory" in one_line_error(cli("report", run_copy, "--out", tmp_path))
    if os.geteuid() == 0:
        assert str(UNWRITABLE) in one_line_error(cli("report", run_copy, "--out", UNWRITABLE / "r.html"))


def test_lso_never_overwrites_and_picks_a_fresh_default(classifier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("lso", "--space", "pixels", "--classifier", classifier, "--target", "1", "--n", "1",
            "--steps", "2", "--restarts", "1", "--parallel", "1")
    first, second = cli(*args), cli(*args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(made) == 2 and all(n.startswith("lso-") for n in made)
    before = listing(tmp_path / "runs" / made[0])
    line = one_line_error(cli(*args, "--out", tmp_path / "runs" / made[0]))
    assert "already holds LSO output" in line
    assert listing(tmp_path / "runs" / made[0]) == before


# ----------------------------------------------------------- config values


@pytest.mark.parametrize("text, needles", [
    ("train:\n  seed: 2024-01-31\n", ["train.seed", "2024-01-31"]),
    ("train:\n  seed: 2024-01-31 10:00:00\n", ["train.seed"]),
    ("train:\n  epochs: !!set {3: null}\n", ["train.epochs", "set"]),
    ("train:\n  epochs: !!binary aGVsbG8=\n", ["train.epochs", "binary"]),
    ("train:\n  lr: .nan\n", ["train.lr", "finite"]),
    ("train:\n  min_delta: .inf\n", ["train.min_delta", "finite"]),
    ("model:\n  3: relu\n", ["model", "key 3"]),
    ("model: &a [*a]\n", ["contains itself"]),
    ("a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", ["values"]),
    ("[" * 5000 + "]" * 5000, ["nested"]),
    ("\udcff", []),
])
def test_yaml_values_no_config_can_hold(tmp_path, text, needles):
    path = tmp_path / "c.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    line = one_line_error(cli("train", path, "--out", tmp_path / "out"))
    assert str(path) in line and all(n in line for n in needles), line
    assert not (tmp_path / "out").exists()


def test_a_date_is_read_as_the_string_it_looks_like(tiny, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny).replace("name: tiny", "name: 2024-01-31"))
    assert aelab.load_config(path).name == "2024-01-31"


@pytest.mark.parametrize("item, needles", [
    ("train.seed=2024-01-31", ["train.seed", "2024-01-31"]),
    ("train.epochs=!!set {3: null}", ["--set train.epochs", "set"]),
    ("train.lr=.inf", ["--set train.lr", "finite"]),
    ("model.encoder=[[[[[[" + "[" * 3000, []),
])
def test_set_values_no_config_can_hold(cfg_file, tmp_path, item, needles):
    line = one_line_error(cli("train", cfg_file, "--set", item, "--out", tmp_path / "out"))
    assert all(n in line for n in needles), line
    assert not (tmp_path / "out").exists()


def test_documented_set_form_reaches_a_dense_shorthand_layer():
    cfg = aelab.load_config(ROOT / "configs" / "mnist-hidden3.yaml", ["model.encoder.0.units=64"])
    assert cfg.model.encoder[0].units == 64 and cfg.model.encoder[1].units == 10


# ----------------------------------------------------------------- labels


def _npz(tmp_path: Path, labels: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.random((len(labels), 8, 8)).astype(np.float32), y=labels)
    return path


def _classifier_cfg(path: Path, **data) -> dict:
    return {"data": {"name": "npz", "path": str(path), "test_size": 0.25, **data},
            "model": {"kind": "classifier", "encoder": [8]},
            "train": {"epochs": 1, "batch_size": 32}, "eval": {"figures": False}}


def test_labels_one_to_ten_are_mapped_and_recorded(tmp_path):
    labels = np.tile(np.arange(1, 11), 12)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(_classifier_cfg(_npz(tmp_path, labels))))
    r = cli("train", cfg, "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    assert "data.labels" in r.stderr and "1..10" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["data"]["labels"] == list(range(1, 11))
    assert json.loads((tmp_path / "run" / "model.json").read_text())["num_classes"] == 10
    assert cli("train", "--resume", tmp_path / "run", "--quiet").exit_code == 0


def test_labels_outside_the_declared_ones_are_one_line(tmp_path):
    labels = np.tile(np.arange(1, 11), 12)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(_classifier_cfg(_npz(tmp_path, labels), labels=list(range(1, 10)))))
    line = one_line_error(cli("train", cfg, "--out", tmp_path / "run"))
    assert "label 10" in line and "data.labels" in line
    assert not (tmp_path / "run").exists()


def test_too_few_classifier_outputs_are_one_line(tmp_path):
    cfg = _classifier_cfg(_npz(tmp_path, np.tile(np.arange(10), 12)))
    cfg["model"]["num_classes"] = 5
    with pytest.raises(aelab.ModelSpecError, match="num_classes: 5.*10 classes"):
        aelab.train(cfg, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_crash_before_the_first_checkpoint_leaves_nothing(tiny, tmp_path, monkeypatch):
    from aelab.training import gradient

    def boom(*a, **k):
        raise RuntimeError("a bug in the first epoch")
    monkeypatch.setattr(gradient.GradientTrainer, "train_epoch", boom)
    with pytest.raises(RuntimeError):
        aelab.train(tiny, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "given").mkdir()
    with pytest.raises(RuntimeError):
        aelab.train(tiny, out=tmp_path / "given")
    assert list((tmp_path / "given").iterdir()) == []
    monkeypatch.undo()
    assert aelab.train(tiny, out=tmp_path / "given").status == "completed"


# --------------------------------------------------------- damaged run files


DAMAGE = {
    "history.csv": [b"epoch,train_loss\n1,abc\n", b"\xff\xfe\x00garbage", b"epoch,train_loss\n1,2,3\n",
                    b"a,b\n1,2\n"],
    "metrics.json": [b"[1, 2]", b"{not json", b'{"status": 3}', b'{"status": "weird"}', b"\xff"],
    "model.json": [b"[]", b"{}", b'{"kind": "ae", "input_shape": "abc"}', b'{"kind": "ae", "input_shape": [1, 8]}',
                   b'{"kind": "vae", "input_shape": [1, 8, 8]}', b'{"kind": "ae", "input_shape": [1, 9, 9]}',
                   b'{"kind": "ae", "input_shape": [1, 0, 8]}', b"null"],
    "model.safetensors": [b"", b"garbage", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "],
    "config.yaml": [b"model: [", b"- a list", b"train:\n  epochs: -1\n", b""],
}
CASES = [(f, i) for f, damages in DAMAGE.items() for i in range(len(damages))]


@pytest.mark.parametrize("name, i", CASES)
def test_damaged_run_files_are_one_line_for_every_reader(run_copy, classifier, name, i):
    (run_copy / name).write_bytes(DAMAGE[name][i])
    shown = name not in ("model.safetensors",) and DAMAGE[name][i] != b'{"kind": "ae", "input_shape": [1, 9, 9]}'
    commands = [*([("show", run_copy), ("report", run_copy)] if shown else []),  # these read no weights
                ("evaluate", run_copy),
                ("lso", "--classifier", classifier, "--decoder", run_copy, "--target", "1")]
    if name in ("model.json", "model.safetensors", "config.yaml"):
        commands.append(("explore", run_copy, "--port", "0"))
    for args in commands:
        before = listing(run_copy)
        r = cli(*args)
        if name in ("history.csv", "metrics.json") and args[0] == "lso":
            continue  # LSO reads only the config, model.json and weights
        line = one_line_error(r)
        assert name in line or str(run_copy) in line, (args[0], line)
        assert listing(run_copy) == before, args[0]


def test_weights_of_another_shape_name_the_tensor(run_copy, tmp_path):
    other = tmp_path / "other"
    aelab.train(copy.deepcopy(TINY) | {"model": {**TINY["model"], "encoder": [8]},
                                       "train": {**TINY["train"], "epochs": 1}}, out=other)
    shutil.copy(other / "model.safetensors", run_copy / "model.safetensors")
    line = one_line_error(cli("evaluate", run_copy))
    assert "model.safetensors" in line and "expected (16, 64)" in line


def test_a_damaged_checkpoint_is_one_line_on_resume(tiny, tmp_path):
    out = tmp_path / "run"
    aelab.train(tiny, out=out)
    (out / "metrics.json").unlink()
    for data in (b"garbage", (out / "model.safetensors").read_bytes()):
        (out / "checkpoint.safetensors").write_bytes(data)
        line = one_line_error(cli("train", "--resume", out, "--quiet"))
        assert "checkpoint.safetensors" in line


# ------------------------------------------------------------------ memory


def test_a_model_too_large_for_memory_is_one_line_with_its_size(tiny, tmp_path):
    tiny["model"]["encoder"] = [200_000, 200_000]
    cfg = tmp_path / "big.yaml"
    cfg.write_text(yaml.safe_dump(tiny))
    line = one_line_error(cli("train", cfg, "--out", tmp_path / "run"))
    assert "parameters need about" in line and "GiB" in line and "available" in line
    assert not (tmp_path / "run").exists()


def test_an_allocation_failure_is_one_line(cfg_file, tmp_path, monkeypatch):
    from aelab import pipeline

    def refuse(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 400000000000 bytes. Error code 12")
    monkeypatch.setattr(pipeline, "fit", refuse)
    line = one_line_error(cli("train", cfg_file, "--out", tmp_path / "run", "--quiet"))
    assert line == "error: out of memory: tried to allocate 400000000000 bytes"
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------- one writer


def test_a_second_writer_refuses_in_one_line(cfg_file, run_copy, tmp_path):
    out = tmp_path / "busy"
    with exclusive(out):
        line = one_line_error(cli("train", cfg_file, "--out", out, "--quiet"))
        assert "another aelab command" in line and str(os.getpid()) in line
        assert {p.name for p in out.iterdir()} == {LOCK}
    with exclusive(run_copy, None):
        before = listing(run_copy)
        for args in (("evaluate", run_copy), ("train", "--resume", run_copy, "--quiet")):
            assert "another aelab command" in one_line_error(cli(*args))
        assert listing(run_copy) == before
    assert cli("train", cfg_file, "--out", out, "--quiet").exit_code == 0
    assert LOCK not in {p.name for p in out.iterdir()}


def _aelab(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aelab", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_two_trainings_started_together_leave_one_consistent_run(tiny, tmp_path):
    tiny["train"]["epochs"] = 30
    out = tmp_path / "run"
    files = []
    for seed in (1, 2):
        tiny["train"]["seed"] = seed
        files.append(tmp_path / f"c{seed}.yaml")
        files[-1].write_text(yaml.safe_dump(tiny))
    procs = [_aelab("train", f, "--out", out, "--quiet") for f in files]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert len(refused.strip().splitlines()) == 1 and "Traceback" not in refused
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    winner = next(i for i, (code, _) in enumerate(results) if code == 0) + 1
    assert cfg["train"]["seed"] == winner


# ------------------------------------------------------------------ signals


def _catching(pid: int) -> bool:
    """Whether the process has installed its SIGINT and SIGTERM handlers."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return all(caught >> (s - 1) & 1 for s in (signal.SIGINT, signal.SIGTERM))


def _interrupt(args, sig, after, **kw):
    """Signal the command ``after`` seconds after its handlers are in place
    (before that the interpreter itself is still starting)."""
    proc = _aelab(*args, **kw)
    while not _catching(proc.pid) and proc.poll() is None:
        time.sleep(0.001)
    time.sleep(after)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("after", [0.0, 0.05, 0.5])
def test_a_signal_during_start_up_is_one_line(cfg_file, tmp_path, sig, code, after):
    """0 s: at once; 0.05 s: during the command line's imports; 0.5 s:
    during torch's, inside ``train`` (on a fast machine, perhaps just after
    the run directory was made).  Either nothing is written and the line
    says only "interrupted", or the run has its config.yaml and the line
    names the resume command: never a directory that neither resumes nor
    lets ``--out`` start again."""
    out = tmp_path / "run"
    rc, err = _interrupt(["train", cfg_file, "--out", out, "--quiet"], sig, after)
    if rc == 0:
        pytest.skip("the command finished before the signal")
    assert rc == code and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    name = signal.Signals(sig).name
    if out.exists():
        assert lines == [f"interrupted ({name}): resume with `aelab train --resume '{out}'`"], err
        assert (out / "config.yaml").exists() and LOCK not in {p.name for p in out.iterdir()}
    else:
        assert lines == [f"interrupted ({name})"], err


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_names_the_resume_command(tiny, tmp_path, sig, code):
    tiny["train"]["epochs"] = 40
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny))
    out = tmp_path / "run dir"
    proc = _aelab("train", cfg, "--out", out, "--quiet")
    deadline = time.time() + 120
    while not (out / "history.csv").exists() and time.time() < deadline:  # an epoch is done
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"interrupted ({signal.Signals(sig).name}): resume with "
                     f"`aelab train --resume '{out}'`"], err
    assert LOCK not in {p.name for p in out.iterdir()}
    if sig == signal.SIGINT:
        return  # resuming is the same after either signal: check it once
    resumed = _aelab("train", "--resume", out, "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert json.loads((out / "metrics.json").read_text())["epochs_trained"] == 40


def test_a_study_directory_belongs_to_one_study_and_storage(tiny, tmp_path):
    from aelab.studies import run_study
    tiny["train"]["epochs"] = 1
    study = {"name": "s", "base": tiny, "space": {"train.lr": [0.01]}, "objectives": {"recon_mse": "min"},
             "strategy": "grid"}
    run_study(study, out=tmp_path / "s")
    before = listing(tmp_path / "s")
    other = copy.deepcopy(study) | {"space": {"train.lr": [0.02]}}
    with pytest.raises(aelab.ConfigError, match="another study file"):
        run_study(other, out=tmp_path / "s")
    with pytest.raises(aelab.ConfigError, match="another storage"):
        run_study(study, out=tmp_path / "s", storage=f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert listing(tmp_path / "s") == before
    assert run_study(study, out=tmp_path / "s").rows  # the same study again continues


def test_an_interruption_before_anything_resumable_undoes_the_directory(tmp_path, capsys):
    """The window a timed signal can only sometimes hit, hit every time:
    interrupted after the directory (and its lock) exist but before
    config.yaml, nothing is left and no resume command is offered."""
    from aelab import interrupts
    from aelab.outdir import writing
    out = tmp_path / "run"
    resumable = lambda: (out / "config.yaml").exists()  # noqa: E731
    with pytest.raises(KeyboardInterrupt) as caught:
        with interrupts.hint("resume with X", when=resumable), writing(out, keep_on_interrupt=resumable):
            raise interrupts.Interrupted(signal.SIGTERM)
    assert not out.exists()
    interrupts._state.update(hint=None, reported=False)
    assert interrupts.report(caught.value) == 143
    assert capsys.readouterr().err.strip() == "interrupted (SIGTERM)"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with interrupts.hint("resume with X", when=resumable), writing(out, keep_on_interrupt=resumable):
            (out / "config.yaml").write_text("x")
            raise interrupts.Interrupted(signal.SIGINT)
    assert (out / "config.yaml").exists() and LOCK not in {p.name for p in out.iterdir()}
    interrupts._state.update(reported=False)
    assert interrupts.report() == 130
    assert capsys.readouterr().err.strip() == "interrupted (SIGINT): resume with X"
    interrupts._state.update(hint=None, reported=False)


# ------------------------------------------------------------------ start-up

HEAVY = ("torch", "numpy", "sklearn", "matplotlib", "optuna")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return aelab.train(copy.deepcopy(TINY), out=tmp_path_factory.mktemp("startup") / "run").path


@pytest.mark.parametrize("args", [["--help"], ["datasets"], ["show", "RUN"], ["configs"],
                                  ["train", "CONFIG", "--set", "train.epochz=3"]])
def test_the_commands_that_answer_at_once_import_nothing_heavy(args, finished_run, cfg_file):
    """Under a second of CPU (benchmarks/startup.py measures it) holds only
    while these commands leave torch, numpy, scikit-learn, matplotlib and
    Optuna unimported: a plug-in's description or summary that needs one
    (a family's ``describe``, a trainer's summary) shows up here."""
    args = [str(finished_run) if a == "RUN" else str(cfg_file) if a == "CONFIG" else a for a in args]
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; sys.argv[0] = 'aelab'; from aelab.__main__ import main; main()", *args],
                          capture_output=True, text=True, timeout=120)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not [m for m in HEAVY if m in imported], [m for m in HEAVY if m in imported]
    assert proc.returncode in (0, 2), proc.stderr[-500:]
