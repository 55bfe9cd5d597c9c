"""The conditional VAE (Sohn et al. 2015) as the proof of the family plug-in:
trained like any run, sampled per class, optimized through by LSO with the
class given, explored with a class to decode as."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from starlette.testclient import TestClient
from typer.testing import CliRunner

import aelab
from aelab import lso
from aelab.cli import app
from aelab.runs import load_model
from conftest import TINY


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("cvae")
    base = copy.deepcopy(TINY)
    base["train"].update(epochs=12, lr=0.01, loss="bce")
    cvae = aelab.train(base | {"eval": {"max_samples": 200, "figures": True}, "model": {"kind": "cvae", "encoder": [32], "latent_dim": 2}}, out=root / "cvae")
    clf = aelab.train(base | {"model": {"kind": "classifier", "encoder": [32]}, "train": {**base["train"],
                                                                                           "loss": "mse"}},
                      out=root / "clf")
    return {"cvae": cvae.path, "clf": clf.path}


def test_a_cvae_run_writes_the_elbo_and_a_per_class_grid(runs):
    run = aelab.load_run(runs["cvae"])
    assert run.status == "completed" and run.metrics["elbo"] < 0 and run.metrics["kl"] >= 0
    assert (runs["cvae"] / "figures" / "class_samples.png").exists()
    assert "cvae" in aelab.show(runs["cvae"]).config.model.kind


def test_sampling_a_class_gives_images_the_classifier_calls_that_class(runs):
    model, clf = load_model(runs["cvae"]), load_model(runs["clf"])
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        hits = [float((clf.predict_proba(model.sample(20, torch.full((20,), k), generator=gen)).argmax(1) == k)
                      .float().mean()) for k in range(10)]
    assert np.mean(hits) > 0.6, hits  # chance is 0.1


def test_lso_through_a_cvae_decodes_each_row_as_its_target(runs, tmp_path):
    setup = lso.prepare(runs["clf"], runs["cvae"], lso.LSOOptions(optimizer="adam", lr=0.05, shell=True))
    assert setup.options.start == "prior"  # a generative family starts from its prior
    z = torch.zeros(2, setup.model.latent_dim)
    targets = torch.eye(10)[[3, 7]]
    with torch.no_grad():
        as_targets = setup.model.images(z, targets)
    assert not torch.allclose(as_targets[0], as_targets[1])  # same code, the class decides
    summary = lso.run_lso(runs["clf"], ["3", "7"], runs["cvae"], 4, tmp_path / "out",
                          lso.LSOOptions(optimizer="adam", lr=0.05, shell=True, steps=50, restarts=3))
    assert summary["success_rate"] == 1.0


def test_lso_refuses_a_cvae_and_classifier_with_different_classes(runs, tmp_path):
    base = copy.deepcopy(TINY)
    base["train"]["epochs"] = 1
    base["data"] = {**base["data"], "name": "digits"}
    three = tmp_path / "three.npz"
    rng = np.random.default_rng(0)
    np.savez(three, x=rng.random((60, 8, 8)).astype(np.float32), y=np.repeat([0, 1, 2], 20))
    small = aelab.train(base | {"data": {"name": "npz", "path": str(three)},
                                "model": {"kind": "classifier", "encoder": [8]}}, out=tmp_path / "clf3")
    with pytest.raises(lso.LSOError, match="conditioned on 10 classes"):
        lso.prepare(small.path, runs["cvae"])


def test_the_explorer_decodes_as_the_chosen_class(runs):
    from aelab.explore import build_app
    client = TestClient(build_app(runs["cvae"]), base_url="http://127.0.0.1")
    info = client.get("/api/info").json()
    assert info["conditional"] and info["decode_classes"] == list(range(10))
    a = client.post("/api/decode", json={"codes": [[0, 0]], "label": 1}).json()["images"][0]
    b = client.post("/api/decode", json={"codes": [[0, 0]], "label": 8}).json()["images"][0]
    assert a != b
    missing = client.post("/api/decode", json={"codes": [[0, 0]]})
    assert missing.status_code == 422 and missing.json()["error"].startswith("label:")


def test_aelab_models_lists_the_families_and_what_they_can_do():
    r = CliRunner().invoke(app, ["models"], env={"COLUMNS": "160"})
    assert r.exit_code == 0
    row = next(line for line in r.output.splitlines() if " cvae " in line)
    assert "conditional" in row and "generative" in row
