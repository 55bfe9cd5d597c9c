"""Fuzzing the command line with malformed configs, study files and damaged
run directories (seeded, so every failure reproduces).

Every case must end either in success or with exit code 2 and one line on
stderr, with no traceback and nothing written.  Valid configs stop where
training would begin (the fuzzed part is everything before it: parsing,
validation, data, model, output place), so no case trains for long.
"""
from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import aelab
from aelab.cli import app
from conftest import TINY

runner = CliRunner()
SEED = 20261201

VALUES = [None, -1, 0, 1, 2.5, 10**30, 1e308, -1e-300, "", "abc", "2024-01-31", [], {}, [1, "a"], [[[]]],
          True, False, {"type": "conv2d"}, {"type": "dense", "units": -3}, [{"type": "reshape", "shape": [0]}],
          "mirror", "ae", "vae", "classifier", [64, 10**9], {"a": {"b": {"c": 1}}}]
TEXT_DAMAGE = ["truncate", "byte", "tab", "bom", "dup-key", "bad-tag"]


class Reached(Exception):
    """Raised where training would begin: the case passed every check."""


def leaves(tree, prefix=()):
    """Every (path, value) in a nested dict/list, containers included."""
    yield prefix, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from leaves(v, (*prefix, i))


def mutate(tree: dict, rng: random.Random, max_edits: int = 3) -> dict:
    """``tree`` with one to ``max_edits`` random edits: a value replaced, a
    key removed, renamed or added."""
    out = copy.deepcopy(tree)
    for _ in range(rng.randint(1, max_edits)):
        path, _ = rng.choice([p for p in leaves(out) if p[0]])
        parent = out
        for part in path[:-1]:
            parent = parent[part]
        op, key = rng.random(), path[-1]
        if op < 0.6:
            parent[key] = copy.deepcopy(rng.choice(VALUES))
        elif op < 0.75 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.9 and isinstance(parent, dict):
            parent[f"{key}z"] = parent.pop(key)
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "lr", "units", "kind"])] = rng.choice(VALUES)
    return out


def damage_text(text: str, rng: random.Random) -> bytes:
    how = rng.choice(TEXT_DAMAGE)
    data = text.encode()
    if how == "truncate":
        return data[: rng.randrange(len(data))]
    if how == "byte":
        i = rng.randrange(len(data))
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    if how == "tab":
        return data.replace(b"  ", b"\t", 1)
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "dup-key":
        return data + b"\ntrain: {epochs: 3}\n"
    return data.replace(b": ", b": !!python/object:os.system ", 1)


def one_line_or_ok(result, case) -> bool:
    """True for success; asserts the one-line rule otherwise."""
    if result.exit_code == 0:
        return True
    assert isinstance(result.exception, SystemExit) or result.exception is None, (case, result.exception)
    assert result.exit_code == 2, (case, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.stderr)
    assert "Traceback" not in result.output, case
    return False


def listing(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def stop_before_training(monkeypatch):
    from aelab import pipeline

    def reached(*a, **k):
        raise Reached()
    monkeypatch.setattr(pipeline, "fit", reached)


def test_malformed_configs(tmp_path, stop_before_training):
    rng = random.Random(SEED)
    base = copy.deepcopy(TINY)
    base["model"]["encoder"] = [16, {"type": "dense", "units": 8, "activation": "tanh"}]
    outcomes = {"ok": 0, "error": 0}
    for case in range(150):
        path = tmp_path / f"c{case}.yaml"
        text = yaml.safe_dump(mutate(base, rng))
        path.write_bytes(damage_text(text, rng) if rng.random() < 0.25 else text.encode())
        out = tmp_path / f"out{case}"
        r = runner.invoke(app, ["train", str(path), "--out", str(out), "--quiet"])
        if isinstance(r.exception, Reached):
            outcomes["ok"] += 1
            continue
        assert not one_line_or_ok(r, (case, path.read_bytes()[:300])), "trained without reaching fit?"
        outcomes["error"] += 1
        assert not out.exists(), (case, path.read_text(errors="replace")[:300])
    assert outcomes["error"] > 50 and outcomes["ok"] > 5, outcomes  # the fuzzer reaches both outcomes


def test_malformed_set_overrides(tmp_path, stop_before_training):
    rng = random.Random(SEED + 1)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    keys = [".".join(map(str, p)) for p, _ in leaves(TINY) if p] + ["model.encoder.0.units", "x.y", "train.",
                                                                     "model.encoder.9", "data.name.x"]
    for case in range(80):
        raw = rng.choice(["[", "{a: [}", "!!set {1}", "2024-01-31", ".nan", "10e400", "- a", "'", "\x00",
                          *map(str, VALUES)])
        item = f"{rng.choice(keys)}={raw}" if rng.random() < 0.9 else raw
        r = runner.invoke(app, ["train", str(cfg), "--set", item, "--out", str(tmp_path / "o"), "--quiet"])
        if isinstance(r.exception, Reached):
            continue
        one_line_or_ok(r, item)
        assert not (tmp_path / "o").exists(), item


def test_malformed_study_files(tmp_path, monkeypatch):
    from aelab.studies import run as study_run

    def reached(self, ctx):
        raise Reached()
    monkeypatch.setattr(study_run.LocalExecutor, "run", reached)
    rng = random.Random(SEED + 2)
    base = {"name": "s", "base": copy.deepcopy(TINY), "space": {"train.lr": [0.01, 0.02], "model.latent_dim":
            {"low": 2, "high": 4}}, "objectives": {"recon_mse": "min"}, "strategy": "tpe", "trials": 2, "repeats": 1}
    reached_count = 0
    for case in range(60):
        path = tmp_path / f"s{case}.yaml"
        text = yaml.safe_dump(mutate(base, rng, max_edits=1))
        path.write_bytes(damage_text(text, rng) if rng.random() < 0.2 else text.encode())
        out = tmp_path / f"study{case}"
        r = runner.invoke(app, ["study", "run", str(path), "--out", str(out)])
        if isinstance(r.exception, Reached):
            reached_count += 1
            continue
        one_line_or_ok(r, (case, path.read_bytes()[:300]))
        assert not out.exists(), (case, path.read_text(errors="replace")[:300])
    assert reached_count > 5, reached_count


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz") / "run"
    aelab.train(copy.deepcopy(TINY) | {"train": {**TINY["train"], "epochs": 1}}, out=out)
    return out


def damage_file(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    how = rng.choice(["truncate", "flip", "empty", "delete", "swap-json", "garbage"])
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(data[: rng.randrange(max(1, len(data)))])
    elif how == "flip":
        i = rng.randrange(len(data))
        path.write_bytes(data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "swap-json":
        path.write_bytes(rng.choice([b"[]", b"{}", b"null", b'"x"', b"1e999", b'{"status": []}']))
    else:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(64)))


def test_damaged_run_directories(finished_run, tmp_path):
    rng = random.Random(SEED + 3)
    files = ["config.yaml", "metrics.json", "history.csv", "model.json", "model.safetensors",
             "checkpoint.safetensors"]
    for case in range(24):
        run = tmp_path / f"run{case}"
        shutil.copytree(finished_run, run)
        for name in rng.sample(files, rng.randint(1, 2)):
            damage_file(run / name, rng)
        for args in (["show", str(run)], ["report", str(run), "--out", str(tmp_path / "r.html")],
                     ["evaluate", str(run)]):
            before = listing(run)
            if not one_line_or_ok(runner.invoke(app, args), (case, args)):
                assert listing(run) == before, (case, args)
        if not (run / "metrics.json").exists():
            r = runner.invoke(app, ["train", "--resume", str(run), "--quiet"])
            one_line_or_ok(r, (case, "resume"))


@pytest.fixture(scope="module")
def study_and_lso_dirs(tmp_path_factory, finished_run) -> dict[str, Path]:
    """A finished tiny study and an LSO output (pixel space), to damage copies of."""
    from aelab.lso import LSOOptions, run_lso
    from aelab.studies import run_study
    root = tmp_path_factory.mktemp("fuzz-dirs")
    base = copy.deepcopy(TINY) | {"train": {**TINY["train"], "epochs": 1}}
    run_study({"name": "f", "base": base, "space": {"train.lr": [0.01, 0.02]},
               "objectives": {"recon_mse": "min"}, "strategy": "grid"}, out=root / "study")
    clf = root / "clf"
    aelab.train(base | {"model": {"kind": "classifier", "encoder": [8]}}, out=clf)
    run_lso(clf, ["1", "2"], None, 2, root / "lso", LSOOptions(space="pixels", steps=3, restarts=1, parallel=1))
    return {"study": root / "study", "lso": root / "lso"}


def test_damaged_study_and_lso_outputs(study_and_lso_dirs, tmp_path):
    rng = random.Random(SEED + 4)
    files = {"study": ["study.yaml", "results.csv", "summary.md"], "lso": ["summary.json", "samples.npz"]}
    for case in range(24):
        kind = rng.choice(sorted(files))
        folder = tmp_path / f"{kind}{case}"
        shutil.copytree(study_and_lso_dirs[kind], folder)
        for name in rng.sample(files[kind], rng.randint(1, len(files[kind]))):
            damage_file(folder / name, rng)
        before = listing(folder)
        r = runner.invoke(app, ["report", str(folder), "--out", str(tmp_path / "r.html")])
        if not one_line_or_ok(r, (case, kind)):
            assert listing(folder) == before, case
