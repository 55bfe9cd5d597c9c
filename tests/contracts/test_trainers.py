"""The contract every trainer keeps: a method joins by being registered
(``METHODS`` below is the registry) and each check runs for it.

It declares itself (method, one-line description, its unit of work), its
config carries only its own fields, it learns a tiny problem, it resumes
bit-exactly after SIGKILL, it never keeps a non-finite value in its state
(a run whose loss stops being finite ends ``diverged``), and it says in one
line what it trained.
"""
from __future__ import annotations

import copy
import math
import signal

import pytest
import torch
import yaml

import aelab
from aelab.pipeline import build, tensors
from aelab.data import load_dataset
from aelab.evaluation import evaluate_model
from aelab.spec import dump_config, load_config
from aelab.training.checkpoint import read_tensors_and_state
from aelab.training.registry import methods, spec_classes, trainer
from conftest import TINY, TRAIN_BUDGET, train_killed_after_rows
from aelab.models.family import EMBED, capabilities_of, families
from test_training import assert_same_weights, stable

METHODS = methods()

def config(method: str, kind: str | None = None, **fields) -> dict:
    """TINY's data, the family ``kind`` (by default the first family this
    method trains) with its small example, and the method's small budget."""
    cfg = copy.deepcopy(TINY)
    fam = next(f for f in families() if method in f.methods and kind in (None, f.kind))
    cfg["model"] = {"kind": fam.kind, **copy.deepcopy(fam.example)}
    cfg["train"] = {"method": method, "seed": 0, **TRAIN_BUDGET[method], **fields}
    return cfg


def test_every_method_declares_itself():
    assert {"gradient", "ga", "es"} <= set(METHODS)
    for m in METHODS:
        t = trainer(m)
        assert t.method == m and t.description and "\n" not in t.description
        assert spec_classes()[m].model_fields["method"].default == m and spec_classes()[m].unit


@pytest.mark.parametrize("method", METHODS)
def test_config_yaml_holds_only_the_methods_fields(method):
    written = yaml.safe_load(dump_config(load_config(config(method))))["train"]
    assert set(written) == set(spec_classes()[method].model_fields)


# Every family the adversarial trainer trains brings its own game (Family.game), so
# each joins; the other methods train one objective, shown on their first family.
LEARNERS = [(m, f.kind) for m in METHODS for f in families()
            if m in f.methods and (m == "adversarial" or f is next(g for g in families() if m in g.methods))]


@pytest.mark.parametrize("method, kind", LEARNERS)
def test_learns_a_tiny_problem(method, kind, tmp_path):
    run = aelab.train(config(method, kind), out=tmp_path / "run")
    assert run.status == "completed"
    if method == "adversarial":  # a game's losses need not fall: its outputs must move toward the data
        cfg = run.config
        data = load_dataset(cfg.data)
        untrained = build(cfg, data, torch.device("cpu"), warn=False)
        before = evaluate_model(untrained, cfg, data, torch.device("cpu"))
        measure = "recon_mse" if EMBED in capabilities_of(untrained) else "nn_distance"  # reconstructs, or only generates
        assert run.metrics[measure] < 0.8 * before[measure], (measure, before[measure], run.metrics[measure])
    else:
        first, last = run.history[0]["train_loss"], run.history[-1]["train_loss"]
        assert last < first, (first, last)
    assert run.metrics["epochs_trained"] == run.config.train.budget




@pytest.mark.parametrize("method", METHODS)
def test_resumes_bit_exactly_after_sigkill(method, tmp_path):
    every = 2 if spec_classes()[method].unit == "epoch" else 10  # a checkpoint every 2 history rows
    cfg = config(method, checkpoint_every=every)
    killed = tmp_path / "killed"
    assert train_killed_after_rows(cfg, killed, 3) == -signal.SIGKILL
    assert not (killed / "metrics.json").exists()
    resumed = aelab.train(resume=killed)
    straight = aelab.train(cfg, out=tmp_path / "straight")
    assert resumed.status == straight.status == "completed"
    assert_same_weights(resumed.path, straight.path)
    assert stable(resumed.metrics) == stable(straight.metrics)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(resumed.history) == drop(straight.history)


@pytest.mark.parametrize("method", METHODS)
def test_never_keeps_a_non_finite_value_in_its_state(method, tmp_path):
    """Data that overflows every loss: the run either ends ``diverged`` (and
    says so) or keeps only finite numbers in the state it checkpoints."""
    cfg = load_config(config(method))
    data = load_dataset(cfg.data)
    model = build(cfg, data, torch.device("cpu"), warn=False)
    t = trainer(method)
    runner = t.make(model, cfg, [])
    x, y, xv, yv = tensors(data, runner.device)
    x = x.clone()
    x[: len(x) // 2] = 3e38  # squared: inf
    state = runner.fit(x, y, xv, yv)
    t.checkpoint_callback(cfg.train, tmp_path / "ck.safetensors").save(runner)
    saved, _ = read_tensors_and_state(tmp_path / "ck.safetensors")
    finite = all(torch.isfinite(v).all() for k, v in saved.items() if v.is_floating_point())
    assert state.status == "diverged" or finite, state.status
    assert all(math.isfinite(p.detach().abs().sum()) for p in model.parameters()) or state.status == "diverged"


@pytest.mark.parametrize("method", METHODS)
def test_says_in_one_line_what_it_trained(method, tmp_path):
    run = aelab.train(config(method), out=tmp_path / "run")
    spec = run.config.train
    line = spec.summary(run.metrics["epochs_trained"])
    assert "\n" not in line and f"{spec.budget}/{spec.budget} {spec.unit}s" in line
    assert line in (run.path / "report.md").read_text()
    assert f" {spec.unit}s" in line and method.split("-")[0] in line + spec.method


@pytest.mark.parametrize("method", METHODS)
def test_draws_its_own_figures(method, tmp_path):
    cfg = config(method)
    cfg["eval"] = {**cfg["eval"], "figures": True}
    run = aelab.train(cfg, out=tmp_path / "run")
    drawn = {p.name for p in (run.path / "figures").iterdir()}
    model = aelab.load_model(run.path)
    own = trainer(method).figures(tmp_path / "again", model, load_dataset(run.config.data), run.history, "cpu")
    assert own and all(p.exists() and p.name in drawn for p in own)
