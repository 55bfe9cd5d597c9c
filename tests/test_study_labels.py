"""Named choices in a study's space (``{values: [...], labels: [...]}``):
a family study varies whole model and train sections together, and shows
each by its label in results.csv, the summary and the figures; a label list
that does not fit its values is one line."""
from __future__ import annotations

import copy
import csv

import pytest
from conftest import TINY

from aelab.errors import ConfigError
from aelab.studies import run_study

GRADIENT = {"method": "gradient", "epochs": 2, "batch_size": 64, "lr": 0.01, "seed": 0}
ADVERSARIAL = {"method": "adversarial", "epochs": 2, "batch_size": 64, "lr_g": 0.001, "lr_d": 0.001, "seed": 0,
               "collapse": 0}


def family_study(labels) -> dict:
    base = copy.deepcopy(TINY)
    values = [[{"kind": "vae", "encoder": [16], "latent_dim": 2}, GRADIENT],
              [{"kind": "aae", "encoder": [16], "latent_dim": 2, "discriminator": [16]}, ADVERSARIAL]]
    return {"name": "families", "base": base, "strategy": "grid", "fuse": False,
            "space": {"model,train": {"values": values, "labels": labels}},
            "objectives": {"recon_mse": "min"}}


def test_families_with_their_own_trainers_run_in_one_study_shown_by_their_labels(tmp_path):
    spec = family_study(["VAE", "adversarial AE"]) | {"trial_figures": False}
    result = run_study(spec, out=tmp_path / "s")
    assert [r.state for r in result.rows] == ["complete", "complete"]
    assert [r.config for r in result.rows] == ["VAE", "adversarial AE"]
    with open(result.path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model,train"] for r in rows] == ["VAE", "adversarial AE"]
    summary = (result.path / "summary.md").read_text()
    assert "adversarial AE" in summary and '"kind"' not in summary     # no JSON of whole sections
    names = {p.name for p in result.figures}
    assert {"reconstructions.png", "samples.png"} <= names and all("{" not in n for n in names)


@pytest.mark.parametrize("labels, match", [(["one"], r"labels: expected one per value \(2\), got 1"),
                                           (["a", "a"], r"labels: expected distinct, non-empty names"),
                                           (["a", " "], r"labels: expected distinct, non-empty names")])
def test_labels_that_do_not_fit_the_values_are_one_line(labels, match, tmp_path):
    with pytest.raises(ConfigError, match=match) as e:
        run_study(family_study(labels), out=tmp_path / "s")
    assert "\n" not in str(e.value) and not (tmp_path / "s").exists()
