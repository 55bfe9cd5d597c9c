"""The contract every study strategy keeps: a strategy joins by being
registered (``STRATEGIES`` below is the registry) and each check runs for
it, on a space of configurations or -- for the architecture strategies --
an architecture space.

It spends exactly its budget, a study run again resumes (trains nothing
new, reports the same results), no trial is counted twice and each counted
configuration has one run (proposed twice, it reuses it), and results.csv
lists every counted trial once.
"""
from __future__ import annotations

import copy
import csv

import pytest

from aelab.studies import run_study
from aelab.studies.strategies import STRATEGIES

BASE = {
    "data": {"name": "digits", "normalize": "unit", "test_size": 0.25, "seed": 0, "samples": 300},
    "model": {"kind": "ae", "encoder": [8], "latent_dim": 2, "output_activation": "sigmoid"},
    "train": {"optimizer": "adam", "lr": 0.01, "epochs": 1, "batch_size": 128, "seed": 0},
    "eval": {"max_samples": 50, "figures": False},
}
ARCHITECTURE = {"population": 2, "layers": {"low": 1, "high": 3}, "units": {"low": 4, "high": 16},
                "first_layer": "free"}
TRIALS = 4


def study(strategy: str) -> dict:
    spec = {"name": f"contract-{strategy}", "base": copy.deepcopy(BASE), "strategy": strategy,
            "objectives": {"recon_mse": "min"}, "repeats": 1}
    if strategy in ("article-rule", "aging-evolution"):
        return {**spec, "architecture": ARCHITECTURE, "trials": TRIALS}
    space = {"train.lr": [0.001, 0.01, 0.03, 0.1]}
    return {**spec, "space": space, **({} if strategy == "grid" else {"trials": TRIALS})}


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("strategies")
    return {name: (run_study(study(name), out=root / name), root / name) for name in STRATEGIES}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_spends_exactly_its_budget(name, studies):
    result, _ = studies[name]
    assert len(result.rows) == TRIALS and all(r.state == "complete" for r in result.rows)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_no_trial_is_counted_twice(name, studies):
    result, folder = studies[name]
    numbers = [r.number for r in result.rows]
    assert len(set(numbers)) == len(numbers)
    by_config = {}
    for r in result.rows:  # a configuration proposed twice reuses its run: one run per configuration
        by_config.setdefault(r.config, set()).update(r.runs)
    assert all(len(runs) == 1 for runs in by_config.values()), by_config
    assert len({run for runs in by_config.values() for run in runs}) == len(by_config)
    with (folder / "results.csv").open() as f:
        assert sorted(int(row["trial"]) for row in csv.DictReader(f)) == sorted(numbers)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_running_it_again_resumes_and_trains_nothing_new(name, studies):
    result, folder = studies[name]
    before = {p.name for p in (folder / "runs").iterdir()}
    again = run_study(study(name), out=folder)
    assert {p.name for p in (folder / "runs").iterdir()} == before
    assert [(r.number, r.config, r.per_seed) for r in again.rows] == \
        [(r.number, r.config, r.per_seed) for r in result.rows]
