"""Architecture evolution: the genome, the article's rule, aging evolution's
operators, the strategies on the study machinery, outputs and bad input."""
from __future__ import annotations

import csv
import copy
import json

import numpy as np
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from aelab import plots
from aelab.cli import app
from aelab.errors import ConfigError
from aelab.spec import load_config
from aelab.studies import run_study
from aelab.studies.architecture import Architecture, ArchitectureSpec, Space
from aelab.studies.architecture.history import Member, pareto_ranks
from aelab.studies.architecture.mutation import OPERATORS, article_rule, mutate
from aelab.studies.architecture.propose import _current, _next_slot

BASE = {
    "data": {"name": "digits", "normalize": "unit", "test_size": 0.25, "seed": 0},
    "model": {"kind": "vae", "encoder": [16], "latent_dim": 2, "output_activation": "sigmoid"},
    "train": {"optimizer": "adam", "lr": 0.01, "epochs": 1, "batch_size": 128, "seed": 0},
    "eval": {"max_samples": 100, "figures": False},
}
ARTICLE = {"population": 2, "layers": {"low": 2, "high": 6}, "units": {"low": 4, "high": 32},
           "first_layer": "input"}


def study(strategy="article-rule", trials=4, objectives=None, **arch) -> dict:
    return {"name": f"arch-{strategy}", "base": copy.deepcopy(BASE), "strategy": strategy, "trials": trials,
            "architecture": {**ARTICLE, **arch}, "objectives": objectives or {"val_loss": "min"}}


def space(**changes) -> Space:
    spec = ArchitectureSpec.model_validate({**ARTICLE, **changes})
    return Space.resolve(spec, copy.deepcopy(BASE), (1, 8, 8))


def arch(dense, conv=(), kind="vae", activation="relu", latent=2) -> Architecture:
    return Architecture(kind=kind, conv=tuple(conv), dense=tuple(dense), activation=activation, latent_dim=latent)


# --------------------------------------------------------------- the genome


def test_genome_becomes_the_config_fields_and_a_buildable_model():
    a = arch([64, 20], conv=[4], kind="ae", activation="tanh", latent=3)
    cfg = space(conv_layers={"low": 0, "high": 1}, first_layer="free", kinds=["ae", "vae"],
                activations=["relu", "tanh"], latent_dims=[2, 3]).config(a)
    assert cfg.model.kind == "ae" and cfg.model.latent_dim == 3 and cfg.model.activation == "tanh"
    assert [l.type for l in cfg.model.encoder] == ["conv2d", "dense", "dense"]
    assert cfg.model.encoder[0].stride == 2 and cfg.model.encoder[1].units == 64


def test_canonical_form_identifies_an_architecture_whatever_the_route():
    s = space()
    a = arch([64, 10, 8])
    grown, _ = article_rule(a, s, np.random.default_rng(0))
    assert grown == arch([64, 11, 10])
    assert grown.canonical() == Architecture.from_dict(json.loads(grown.canonical())).canonical()
    assert arch([64, 11, 10]).canonical() == grown.canonical() != a.canonical()


def test_space_rejects_what_lies_outside_it_with_a_reason():
    s = space()
    assert s.infeasible(arch([64, 10])) is None
    assert "input's size 64" in s.infeasible(arch([32, 10]))
    assert "dense width outside" in s.infeasible(arch([64, 100]))
    assert "dense layers" in s.infeasible(arch([64]))
    assert "kind" in s.infeasible(arch([64, 10], kind="ae"))


def test_random_architectures_respect_the_article_constraint():
    s, rng = space(), np.random.default_rng(1)
    for _ in range(50):
        a = s.random(rng)
        assert a.dense[0] == 64 and 2 <= len(a.dense) <= 6
        assert list(a.dense[1:]) == sorted(a.dense[1:], reverse=True)
        assert s.infeasible(a) is None


# ---------------------------------------------------------- the article's rule


def test_article_rule_adds_k_units_to_layer_k_up_to_four_layers():
    child, how = article_rule(arch([64, 30, 20, 10]), space(), np.random.default_rng(0))
    assert child.dense == (64, 31, 22, 13) and how == "add k units to layer k"


def test_article_rule_removes_one_random_layer_above_four_but_never_the_input_sized_one():
    parent = arch([64, 30, 20, 10, 6])
    seen = set()
    for seed in range(40):
        child, how = article_rule(parent, space(), np.random.default_rng(seed))
        assert len(child.dense) == 4 and child.dense[0] == 64 and how.startswith("remove layer")
        seen.add(child.dense)
    assert len(seen) == 4  # each of the four later layers gets removed by some draw


def _member(number, slot, generation, value, state=TrialState.COMPLETE):
    return Member(number=number, state=state, arch=arch([64, 8 + number]), index=number,
                  generation=generation, slot=slot, parent=None, how="",
                  values=None if value is None else [value])


def test_a_mutant_replaces_its_parent_only_if_it_scores_better():
    lineage = [_member(0, 0, 0, 0.5), _member(2, 0, 1, 0.6), _member(4, 0, 2, 0.4),
               _member(6, 0, 3, None, TrialState.FAIL)]
    assert _current(lineage, ["minimize"]).number == 4
    assert _current(lineage, ["maximize"]).number == 2


def test_slots_advance_once_their_last_mutant_finished():
    history = [_member(0, 0, 0, 0.5), _member(1, 1, 0, 0.4), _member(2, 0, 1, None, TrialState.RUNNING)]
    assert _next_slot(history, 2) == 1
    history.append(_member(3, 1, 1, None, TrialState.RUNNING))
    assert _next_slot(history, 2) is None


# --------------------------------------------------------- general operators


def test_every_operator_keeps_children_inside_a_wide_space():
    s = space(first_layer="free", layers={"low": 0, "high": 4}, conv_layers={"low": 0, "high": 2},
              kinds=["ae", "vae"], activations=["relu", "tanh", "elu"], latent_dims=[2, 4, 8])
    rng = np.random.default_rng(0)
    names = set()
    for _ in range(120):
        parent = s.random_feasible(rng)
        made = mutate(parent, s, rng, seen=set())
        assert made is not None and s.infeasible(made.child) is None and made.child != parent
        names.add(made.how)
    assert names == set(OPERATORS)


def test_mutate_prefers_unseen_children_and_records_skipped_attempts():
    s = space(first_layer="free", layers={"low": 1, "high": 3})
    parent = arch([20, 10])
    seen = {parent.canonical()}
    made = mutate(parent, s, np.random.default_rng(0), seen)
    assert made.child.canonical() not in seen
    narrow = space(first_layer="free", layers={"low": 2, "high": 2}, units={"low": 10, "high": 10})
    assert mutate(arch([10, 10]), narrow, np.random.default_rng(0), set()) is None  # nothing can change


def test_pareto_ranks_peel_fronts():
    assert pareto_ranks([(1, 3), (2, 2), (3, 1), (2, 3), (3, 3)]) == [0, 0, 0, 1, 2]


def test_generation_curve_data_tracks_best_so_far():
    d = plots.generation_curve_data([0, 0, 1, 1, 2], [0.5, 0.3, 0.4, float("nan"), 0.2], "min")
    assert list(d["generation"]) == [0, 1, 2]
    assert list(d["best"]) == [0.3, 0.4, 0.2] and list(d["best_so_far"]) == [0.3, 0.3, 0.2]
    assert d["mean"][0] == pytest.approx(0.4)


# ----------------------------------------------------- on the study machinery


@pytest.fixture(scope="module")
def article(tmp_path_factory):
    """One article-rule study (population 2, three generations), shared by the tests below."""
    out = tmp_path_factory.mktemp("article") / "s"
    return out, run_study(study(trials=6), out=out)


def test_article_rule_study_end_to_end(article):
    out, result = article
    assert len(result.rows) == 6
    rows = list(csv.DictReader(open(out / "architectures.csv")))
    assert [(r["generation"], r["slot"]) for r in rows] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1"),
                                                            ("2", "0"), ("2", "1")]
    by_trial = {r["trial"]: r for r in rows}
    for r in rows[2:]:  # each mutant's parent is its slot's best so far, mutated by the rule
        parent = by_trial[r["parent"]]
        assert parent["slot"] == r["slot"]
        lineage = [x for x in rows if x["slot"] == r["slot"] and int(x["generation"]) < int(r["generation"])]
        scored = [x for x in lineage if x["val_loss"]]
        assert float(parent["val_loss"]) == min(float(x["val_loss"]) for x in scored)
    text = (out / "evolution.md").read_text()
    assert "## Generations" in text and "## Lineage of the best architecture" in text
    best = load_config(yaml.safe_load((out / "best-config.yaml").read_text()))
    assert best.model.kind == "vae" and best.model.encoder[0].units == 64
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"val_loss_by_generation.png", "val_loss_vs_layers.png"} <= figures
    assert "architecture" in (out / "results.csv").read_text().splitlines()[0]


def test_rerunning_an_architecture_study_trains_nothing_new(article):
    out, first = article
    runs = sorted(p.name for p in (out / "runs").iterdir())
    again = run_study(study(trials=6), out=out)
    assert [r.config for r in again.rows] == [r.config for r in first.rows]
    assert sorted(p.name for p in (out / "runs").iterdir()) == runs


def test_same_seed_same_architectures(article, tmp_path):
    _, first = article
    again = run_study(study(trials=4), out=tmp_path / "b")
    assert [r.config for r in again.rows] == [r.config for r in first.rows[:4]]


def test_aging_evolution_multi_objective_keeps_a_pareto_archive(tmp_path):
    spec = study("aging-evolution", trials=4, objectives={"val_loss": "min", "parameters": "min"},
                 first_layer="free", layers={"low": 1, "high": 3}, kinds=["ae", "vae"], latent_dims=[2, 3])
    result = run_study(spec, out=tmp_path / "s")
    assert len(result.rows) == 4
    text = (tmp_path / "s" / "evolution.md").read_text()
    assert "## Pareto archive" in text
    rows = list(csv.DictReader(open(tmp_path / "s" / "architectures.csv")))
    assert all(r["how"] == "random" for r in rows[:2]) and all(r["parent"] for r in rows[2:])
    assert len({r["architecture"] for r in rows}) == 4  # children are unseen architectures
    assert (tmp_path / "s" / "figures" / "pareto.png").exists()


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_sampler_baselines_search_the_same_space(tmp_path, strategy):
    result = run_study(study(strategy, trials=2), out=tmp_path / "s")
    rows = list(csv.DictReader(open(tmp_path / "s" / "architectures.csv")))
    assert len(result.rows) == 2 and len(rows) == 2
    assert all(r["dense"].split()[0] == "64" for r in rows)


# -------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, message", [
    ({"architecture": {**ARTICLE, "population": 1}}, "architecture.population"),
    ({"trials": 1}, "smaller than architecture.population 2"),
    ({"architecture": {**ARTICLE, "layers": {"low": 0, "high": 0}}}, "admit no layer"),
    ({"architecture": {**ARTICLE, "layers": {"low": 5, "high": 2}}}, "low <= high"),
    ({"architecture": {**ARTICLE, "first_layer": "input", "units": {"low": 4, "high": 4},
                       "layers": {"low": 1, "high": 1}, "latent_dims": [0]}}, "latent_dims"),
    ({"strategy": "grid"}, "cannot enumerate an architecture space"),
    ({"objectives": {"val_loss": "min", "parameters": "min"}}, "exactly one objective"),
    ({"architecture": None}, "needs an architecture: block"),
])
def test_bad_architecture_studies_fail_in_one_line_writing_nothing(tmp_path, change, message):
    spec = {**study(), **change}
    with pytest.raises(ConfigError, match=message) as e:
        run_study(spec, out=tmp_path / "s")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "s").exists()


def test_a_space_with_no_buildable_network_is_one_line(tmp_path):
    # the first dense layer must have the input's size, but no dense layer is allowed
    spec = study(first_layer="input", layers={"low": 0, "high": 0}, conv_layers={"low": 1, "high": 1})
    with pytest.raises(ConfigError, match="no network in this space could be built"):
        run_study(spec, out=tmp_path / "s")


def test_cli_runs_an_architecture_study_and_reports_bad_input(tmp_path):
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump(study(trials=2)))
    ok = CliRunner().invoke(app, ["study", "run", str(path), "--out", str(tmp_path / "s")])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(app, ["study", "run", str(path), "--out", str(tmp_path / "t"), "--trials", "1"])
    assert bad.exit_code == 2 and "smaller than architecture.population" in bad.stderr
    assert len([l for l in bad.stderr.splitlines() if l.strip()]) == 1


def test_two_workers_claim_every_slot_and_generation_exactly_once(tmp_path):
    result = run_study(study(trials=6, population=3), out=tmp_path / "s", workers=2)
    rows = list(csv.DictReader(open(tmp_path / "s" / "architectures.csv")))
    pairs = [(r["generation"], r["slot"]) for r in rows]
    assert len(result.rows) == 6 and sorted(pairs) == sorted({(str(g), str(s)) for g in (0, 1) for s in (0, 1, 2)})


def test_the_genome_holds_the_encoder_latent_decoder_kinds_and_names_any_other():
    """Asked of the specs: a family whose spec is an encoder, a code and a
    decoder joins by itself; a GAN or a classifier is one line."""
    from aelab.studies.architecture.space import genome_kinds
    assert {"ae", "cae", "cvae", "dae", "sae", "vae"} <= set(genome_kinds())
    assert not {"gan", "classifier"} & set(genome_kinds())
    held = ", ".join(genome_kinds())  # ae, cae, cvae, dae, sae, vae
    with pytest.raises(ValueError, match=rf"kinds: 'gan' is not a kind the genome holds \(it holds {held}\)"):
        ArchitectureSpec.model_validate({**ARTICLE, "kinds": ["ae", "gan"]})
