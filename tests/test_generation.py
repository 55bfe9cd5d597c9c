"""One yardstick for every generator (aelab.generation): oracles on real
images (the judge's accuracy on real test images is its own test accuracy;
a generator that returns training images is at distance 0 from them), the
same keys for every generative family, ``aelab evaluate --judge``, and its
bad input."""
from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import aelab
from aelab import generation
from aelab.cli import app
from aelab.data import load_dataset
from aelab.errors import AelabError
from aelab.models.family import GENERATION_METRICS, JUDGED_METRICS
from aelab.spec import load_config
from conftest import TINY

CONDITIONAL_ONLY = {"judge_accuracy", "judge_accuracy_min"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("generation")
    clf = copy.deepcopy(TINY)
    clf["model"] = {"kind": "classifier", "encoder": [32]}
    clf["train"].update(epochs=10)
    vae = copy.deepcopy(TINY)
    vae["model"] = {"kind": "vae", "encoder": [16], "latent_dim": 2}
    return {"judge": aelab.train(clf, out=root / "judge").path, "vae": aelab.train(vae, out=root / "vae").path,
            "ae": aelab.train(copy.deepcopy(TINY), out=root / "ae").path}


def _data():
    return load_dataset(load_config(TINY).data)


def test_the_judges_accuracy_on_real_images_is_its_own_test_accuracy(runs):
    judge, _ = generation.load_classifier(runs["judge"])
    data = _data()
    m = generation.judged(data.x_test, data.y_test, judge, data, seed=0)
    assert m["judge_accuracy"] == pytest.approx(aelab.load_run(runs["judge"]).metrics["accuracy"])
    assert m["judge_accuracy_min"] <= m["judge_accuracy"]
    assert m["fid"] < 0.5 * generation.judged(np.random.default_rng(0).random(data.x_test.shape, np.float32),
                                              None, judge, data, seed=0)["fid"]


def test_a_generator_that_returns_training_images_is_at_distance_zero():
    data = _data()
    m = generation.unjudged(data.x_train[:200], data)
    assert m["nn_distance"] == 0.0 and m["diversity"] > 0 and m["real_diversity"] > 0


def test_every_generative_run_holds_the_pixel_measures_and_with_a_judge_the_judges(runs):
    vae = aelab.load_run(runs["vae"])
    assert set(GENERATION_METRICS) <= set(vae.metrics) and not set(JUDGED_METRICS) & set(vae.metrics)
    metrics = aelab.evaluate(runs["vae"], judge=runs["judge"])
    assert set(JUDGED_METRICS) - CONDITIONAL_ONLY <= set(metrics) and not CONDITIONAL_ONLY & set(metrics)
    assert metrics["judge"] == str(runs["judge"])
    written = json.loads((runs["vae"] / "metrics.json").read_text())
    assert written["fid"] == metrics["fid"] and 1 <= written["classes_covered"] <= 10
    assert 0 <= written["class_entropy"] <= 1 and written["recon_mse"] == vae.metrics["recon_mse"]


def test_aelab_evaluate_with_a_judge_prints_the_yardsticks(runs):
    res = CliRunner().invoke(app, ["evaluate", str(runs["vae"]), "--judge", str(runs["judge"])])
    assert res.exit_code == 0, res.output
    assert "fid_real_floor" in res.output and "precision" in res.output


@pytest.mark.parametrize("case, message", [
    ("not generative", "--judge: .* is a 'ae' run, which does not generate; the judge scores generated samples"),
    ("judge not a classifier", "--judge .*: is a 'vae' run, expected a classifier"),
    ("judge missing", "--judge .*nowhere: not a run directory"),
])
def test_a_wrong_judge_is_one_line_and_leaves_metrics_alone(runs, tmp_path, case, message):
    run, judge = {"not generative": (runs["ae"], runs["judge"]), "judge not a classifier": (runs["vae"], runs["vae"]),
                  "judge missing": (runs["vae"], tmp_path / "nowhere")}[case]
    before = (run / "metrics.json").read_text()
    res = CliRunner().invoke(app, ["evaluate", str(run), "--judge", str(judge)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert re.search(message, " ".join(res.output.split())), res.output
    assert (run / "metrics.json").read_text() == before


def test_a_judge_of_another_image_size_names_both_shapes(runs, tmp_path):
    other = copy.deepcopy(TINY)
    other["data"] = {**other["data"], "resize": [6, 6]}
    other["model"] = {"kind": "classifier", "encoder": [8]}
    other["train"].update(epochs=1)
    small = aelab.train(other, out=tmp_path / "judge6")
    with pytest.raises(AelabError, match="the judge takes 1x6x6 inputs but the samples are 1x8x8 images"):
        aelab.evaluate(runs["vae"], judge=small.path)
