"""The conditional GAN (Mirza & Osindero 2014): both players see the label
(the shapes of their first layers say how), the label decides what the
generator draws, the adversarial trainer feeds each image's label, a judge
scores the samples per class, and LSO optimizes through it with the class
given.  (Building, training, saving and bit-exact resume are the contract
suites' work: ``cgan`` is a registered family like any other.)"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

import aelab
from aelab import lso
from aelab.errors import AelabError
from aelab.models import build_model
from aelab.runs import load_model
from aelab.spec import load_config
from conftest import TINY, TRAIN_BUDGET

CONV = [{"type": "conv2d", "filters": 8, "kernel": 3, "stride": 2, "padding": 1}]


def cgan_config(discriminator=(16,), **train) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["model"] = {"kind": "cgan", "discriminator": list(discriminator), "latent_dim": 4}
    cfg["train"] = {"method": "adversarial", "seed": 0, **TRAIN_BUDGET["adversarial"], **train}
    return cfg


def _built(discriminator):
    return build_model(load_config(cgan_config(discriminator)).model, (1, 8, 8), 10)


def _first(module: nn.Module, kind: type) -> nn.Module:
    return next(m for m in module.modules() if isinstance(m, kind))


def test_both_players_read_the_one_hot_label_beside_their_input():
    """Section 3.2: G sees [z, y]; D sees x and y -- appended to the flat
    image before a dense layer, as K constant planes before a convolution."""
    dense, conv = _built([16]), _built(CONV)
    assert _first(dense.generator, nn.Linear).in_features == 4 + 10
    assert _first(dense.discriminator, nn.Linear).in_features == 64 + 10
    assert _first(conv.discriminator, nn.Conv2d).in_channels == 1 + 10
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 4, 9])
    planes = conv.join(x, y)
    assert planes.shape == (3, 11, 8, 8) and torch.equal(planes[:, 1:].amax((2, 3)), torch.eye(10)[y])
    assert conv.critic(x, y).shape == dense.critic(x, y).shape == (3,)


def test_the_label_decides_what_is_drawn_and_a_one_hot_vector_reads_as_its_label():
    model = _built(CONV).eval()
    z = torch.randn(1, 4).repeat(2, 1)
    with torch.no_grad():
        two = model.decode(z, torch.tensor([1, 7]))
        as_vectors = model.decode(z, torch.eye(10)[[1, 7]])
        critic = model.critic(two, torch.tensor([1, 7])), model.critic(two, torch.tensor([7, 1]))
    assert two.shape == (2, 1, 8, 8) and not torch.allclose(two[0], two[1])
    torch.testing.assert_close(two, as_vectors)
    assert not torch.allclose(*critic)


def test_a_cgan_on_data_without_labels_is_one_line(tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 8, 8)).astype(np.float32))
    cfg = cgan_config() | {"data": {"name": "npz", "path": str(path)}}
    with pytest.raises(AelabError, match="model.kind: cgan needs labelled data; npz has no labels"):
        aelab.train(cfg, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("cgan")
    clf = copy.deepcopy(TINY)
    clf["model"] = {"kind": "classifier", "encoder": [32]}
    clf["train"].update(epochs=12)
    judge = aelab.train(clf, out=root / "judge")
    cfg = cgan_config(CONV, epochs=6)
    cfg["eval"] = {**cfg["eval"], "figures": True, "judge": str(judge.path)}
    return {"cgan": aelab.train(cfg, out=root / "cgan").path, "judge": judge.path}


def test_a_cgan_run_is_judged_per_class_and_draws_its_class_grid(runs):
    run = aelab.load_run(runs["cgan"])
    m = run.metrics
    assert run.status == "completed" and m["judge"] == str(runs["judge"])
    assert 0.0 <= m["judge_accuracy_min"] <= m["judge_accuracy"] <= 1.0
    assert m["fid"] > m["fid_real_floor"] >= 0 and 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
    assert {"class_samples.png", "stages.png", "diversity.png"} <= {p.name for p in (run.path / "figures").iterdir()}
    assert all(0 <= r["diversity"] for r in run.history)


def test_lso_through_a_cgan_decodes_each_row_as_its_target(runs, tmp_path):
    setup = lso.prepare(runs["judge"], runs["cgan"], lso.LSOOptions(optimizer="adam", lr=0.05, shell=True))
    assert setup.options.start == "prior"
    z = torch.zeros(2, setup.model.latent_dim)
    with torch.no_grad():
        images = setup.model.images(z, torch.eye(10)[[2, 5]])
    assert not torch.allclose(images[0], images[1])


def test_zero_steps_scores_the_generators_own_samples(runs, tmp_path):
    """``steps: 0``: the decoded starts as they are, scored by the LSO
    criterion (a baseline row: a CGAN's samples of the asked class)."""
    opts = lso.LSOOptions(steps=0, restarts=1, parallel=1, start="prior")
    summary = lso.run_lso(runs["judge"], ["3", "8"], runs["cgan"], 5, tmp_path / "zero", opts)
    saved = np.load(tmp_path / "zero" / "samples.npz")
    assert (saved["steps"] == 0).all() and np.array_equal(saved["latents"], saved["start_latents"])
    clf = load_model(runs["judge"])
    with torch.no_grad():
        probs = clf.predict_proba(torch.as_tensor(saved["images"])).numpy()
    error = ((probs - saved["targets"]) ** 2).mean(1)
    np.testing.assert_allclose(saved["error"], error, rtol=1e-5, atol=1e-7)
    assert summary["success_rate"] == pytest.approx(float((error <= opts.threshold).mean()))
    with pytest.raises(lso.LSOError, match="--steps -1: expected at least 0"):
        lso.LSOOptions(steps=-1).check()
