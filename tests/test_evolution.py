"""Gradient-free training: the batched population against per-individual
forwards (oracle), operators against hand-computed steps, trainers end to
end, and bad input."""
from __future__ import annotations

import math

import pytest
import torch

import aelab
from aelab.errors import ConfigError
from aelab.models import build_model
from aelab.spec import ModelSpec, TrainSpec, load_config
from aelab.training import operators as op
from aelab.training.evolution import EvolutionTrainer
from conftest import evolving, killed, sigkill_when
from aelab.training.strategies.ga import GA
from aelab.training.population import Population

CONV = [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1}, {"type": "maxpool"},
        {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2}, {"type": "batchnorm"}, 6]
DECODER = [6, 16, {"type": "reshape", "shape": [4, 2, 2]}, {"type": "unpool"},
           {"type": "conv-transpose2d", "filters": 3, "kernel": 3, "padding": 1},
           {"type": "upsample", "size": 2}, {"type": "conv-transpose2d", "filters": 1, "kernel": 3, "padding": 1},
           {"type": "reshape", "shape": [64]}, {"type": "dense", "units": 64}]


@pytest.mark.parametrize("spec", [
    {"encoder": [16, 8], "latent_dim": 2},
    {"encoder": CONV, "latent_dim": 2, "activation": "tanh"},
    {"encoder": CONV, "latent_dim": 2, "decoder": DECODER, "activation": "elu"},
])
def test_batched_population_equals_one_forward_per_individual(spec):
    torch.manual_seed(0)
    model = build_model(ModelSpec.model_validate(spec), (1, 8, 8)).eval()
    pop = Population(model)
    P = pop.vector() + 0.3 * torch.randn(7, pop.size)
    x = torch.rand(5, 1, 8, 8)
    batched = pop.reconstruct(P, x)
    for i, v in enumerate(P):
        pop.load(v)
        with torch.no_grad():
            assert torch.allclose(batched[i], model(x)["x_hat"], atol=1e-5), i
    expected = torch.stack([(batched[i] - x).abs().mean() for i in range(len(P))])
    assert torch.allclose(pop.fitness(P, x), expected, atol=1e-6)


def test_vector_round_trip_and_refusals():
    model = build_model(ModelSpec(encoder=[4]), (1, 2, 2))
    pop = Population(model)
    v = torch.arange(pop.size, dtype=torch.float32)
    pop.load(v)
    assert torch.equal(pop.vector(), v)
    with pytest.raises(ConfigError, match="model.kind: ae"):
        Population(build_model(ModelSpec(kind="vae", encoder=[4]), (1, 2, 2)))


def test_paper_mutation_changes_exactly_k_genes_by_at_most_one():
    gen = torch.Generator().manual_seed(0)
    parents = torch.zeros(50, 1000)
    children = op.mutate_uniform(parents, 10, gen)
    changed = (children != 0).sum(1)
    assert (changed <= 10).all() and (changed >= 9).all()  # a repeated index may coincide
    assert children.abs().max() <= 2.0 and children.abs().max() > 0


def test_paper_ga_generation_by_hand():
    """Elitist, mutation-only: the best survives unchanged, every other slot
    is the best plus k uniform(-1, 1) perturbations."""
    model = build_model(ModelSpec(encoder=[], latent_dim=1, output_activation="linear"), (1, 1, 2))
    pop = Population(model)
    spec = TrainSpec(method="ga", population=4, mutated_weights=1)
    ga = GA(spec, pop, pop.vector(), torch.Generator().manual_seed(0))
    x = torch.rand(3, 1, 1, 2)
    before = ga.P.clone()
    fit = pop.fitness(before, x)
    best_before = before[fit.argmin()]
    best, _ = ga.step(pop, x, torch.Generator().manual_seed(1))
    assert torch.equal(best, best_before) and torch.equal(ga.P[0], best_before)
    diff = ga.P[1:] - best_before
    assert ((diff != 0).sum(1) == 1).all() and diff.abs().max() <= 1.0


def test_selection_and_crossover_operators():
    gen = torch.Generator().manual_seed(0)
    fitness = torch.tensor([3.0, 1.0, 2.0, 5.0])
    assert (op.select_best(fitness, 6, gen) == 1).all()
    winners = op.select_tournament(fitness, 2000, gen, size=4)
    assert (winners != 3).float().mean() > 0.6  # the worst rarely wins a tournament
    ranks = op.select_rank(fitness, 20000, gen).bincount(minlength=4).float()
    assert ranks[1] > ranks[2] > ranks[0] > ranks[3]
    a, b = torch.zeros(100, 30), torch.ones(100, 30)
    u = op.crossover_uniform(a, b, gen)
    assert 0.3 < u.mean() < 0.7
    one = op.crossover_one_point(a, b, gen)
    assert (one.diff(dim=1) >= 0).all()  # zeros, then ones: a single cut
    assert torch.allclose(op.centered_ranks(torch.tensor([2.0, 0.0, 1.0])), torch.tensor([-0.5, 0.5, 0.0]))
    assert op.snes_utilities(torch.tensor([3.0, 1.0, 2.0, 4.0])).sum().abs() < 1e-6
    assert op.one_fifth_rule(1.0, 0.5) > 1.0 > op.one_fifth_rule(1.0, 0.1)


@pytest.mark.parametrize("overrides", [
    ["train.method=ga"],
    ["train.method=ga", "train.selection=tournament", "train.crossover=uniform", "train.mutation=gaussian",
     "train.adaptive=true", "train.elitism=2"],
    ["train.method=ga", "train.selection=rank", "train.crossover=one_point", "train.fitness_batch=8"],
    ["train.method=es", "train.es=openai", "train.lr=0.05"],
    ["train.method=es", "train.es=snes", "train.lr=1.0"],
    ["train.method=es", "train.es=pgpe", "train.lr=0.2"],
    ["train.method=es", "train.es=sepcma"],
])
def test_every_trainer_improves_fitness_in_an_ordinary_run(tiny, tmp_path, overrides):
    tiny["model"] = {"kind": "ae", "encoder": [8], "latent_dim": 2}
    tiny["data"]["samples"] = 20
    run = aelab.train(tiny, overrides=[*overrides, "train.generations=60", "train.population=16",
                                       "train.log_every=20", "train.sigma=0.1"], out=tmp_path / "r")
    assert run.status == "completed" and len(run.history) == 3
    assert run.history[-1]["train_loss"] <= run.history[0]["train_loss"]
    first = aelab.train(tiny, overrides=[*overrides, "train.generations=1", "train.population=16",
                                         "train.log_every=1", "train.sigma=0.1"], out=tmp_path / "f")
    assert run.history[-1]["train_loss"] <= first.history[0]["train_loss"]
    assert math.isfinite(run.metrics["recon_mae"])


def test_evolution_is_seeded(tiny, tmp_path):
    tiny["model"] = {"kind": "ae", "encoder": [8], "latent_dim": 2}
    args = ["train.method=ga", "train.generations=20", "train.population=8", "train.log_every=10"]
    a = aelab.train(tiny, overrides=args, out=tmp_path / "a")
    b = aelab.train(tiny, overrides=args, out=tmp_path / "b")
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


def test_time_budget_stops_early(tiny, tmp_path):
    tiny["model"] = {"kind": "ae", "encoder": [8], "latent_dim": 2}
    run = aelab.train(tiny, overrides=["train.method=ga", "train.generations=10000000", "train.max_seconds=1",
                                       "train.log_every=1000000"], out=tmp_path / "t")
    assert run.status == "completed" and run.metrics["epochs_trained"] < 10000000


def test_bad_evolution_settings(tiny, tmp_path):
    tiny["model"] = {"kind": "ae", "encoder": [], "latent_dim": 1}  # 64*1+1 + 1*64+64 = 193 parameters
    with pytest.raises(ConfigError, match="mutated_weights: k=500 exceeds the network's 193 parameters"):
        aelab.train(tiny, overrides=["train.method=ga", "train.mutated_weights=500"], out=tmp_path / "k")
    with pytest.raises(ConfigError, match="train.population"):
        load_config(tiny, ["train.population=1"])
    with pytest.raises(ConfigError, match="train.elitism"):
        aelab.train(tiny, overrides=["train.method=ga", "train.elitism=20"], out=tmp_path / "e")


def test_non_finite_fitness_is_discarded_not_selected(caplog):
    model = build_model(ModelSpec(encoder=[], latent_dim=1, output_activation="linear"), (1, 1, 2))
    trainer = EvolutionTrainer(model, TrainSpec(method="ga", population=6, mutated_weights=1, generations=1))
    trainer.strategy.P[2:] = float("nan")  # four broken individuals
    x = torch.rand(4, 1, 1, 2)
    with caplog.at_level("WARNING"):
        state = trainer.fit(x, None, x[:0], None)
    assert state.status == "completed" and torch.isfinite(trainer.best).all()
    assert "non-finite fitness discarded" in caplog.text


def test_chunked_scoring_and_mse_fitness(monkeypatch):
    import aelab.training.population as population
    torch.manual_seed(0)
    model = build_model(ModelSpec(encoder=[16], latent_dim=3), (1, 8, 8)).eval()
    pop = Population(model)
    P = pop.vector() + 0.2 * torch.randn(9, pop.size)
    x = torch.rand(6, 1, 8, 8)
    whole = pop.fitness(P, x)
    monkeypatch.setattr(population, "CHUNK_ELEMENTS", 2 * 6 * 64)  # chunks of 2 individuals
    assert torch.allclose(pop.fitness(P, x), whole, atol=1e-7)
    mse = pop.fitness(P, x, "mse")
    assert torch.allclose(mse, ((pop.reconstruct(P, x) - x) ** 2).flatten(1).mean(1), atol=1e-7)


def _killed_at_step_45(self, out, *args) -> bool:
    self.calls = getattr(self, "calls", 0) + 1
    return self.calls == 45  # between the checkpoints of generations 40 and 50


def test_sigkill_then_resume_equals_uninterrupted_evolution(tiny, tmp_path):
    import signal

    from safetensors.torch import load_file
    tiny["model"] = {"kind": "ae", "encoder": [8], "latent_dim": 2}
    evolving(tiny, "ga", generations=80, population=8, log_every=10, checkpoint_seconds=0,
             selection="tournament", crossover="uniform", fitness_batch=64)
    def work():
        import aelab.training.strategies.ga as ev
        sigkill_when(ev.GA, "step", _killed_at_step_45)
        aelab.train(tiny, out=tmp_path / "k")
    assert killed(work) == -signal.SIGKILL
    resumed = aelab.train(resume=tmp_path / "k")
    straight = aelab.train(tiny, out=tmp_path / "s")
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert drop(resumed.history) == drop(straight.history) and len(resumed.history) == 8
    a, b = load_file(str(resumed.path / "model.safetensors")), load_file(str(straight.path / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fast_path_equals_plain_forward_on_the_papers_network():
    """Oracle for the speed work: the fused upsample + transposed-conv steps,
    stacked/grouped convolutions and the stacked first dense layer against
    loading each individual into the model and running its own forward."""
    cfg = load_config("configs/ga-conv-ae.yaml")
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 28, 28)).eval()
    pop = Population(model)
    assert sum(len(step) == 2 for step in pop.plan) == 2  # both unpool + conv-transpose pairs fused
    elite = pop.vector()
    gen = torch.Generator().manual_seed(0)
    children = op.mutate_uniform(elite.repeat(6, 1), 10, gen)  # the GA paper's population
    P = torch.cat([elite[None], children, elite + 0.3 * torch.randn(3, pop.size)])
    x = torch.rand(4, 1, 28, 28) * 0.8 + 0.1
    fast, plain = pop.reconstruct(P, x), pop.reconstruct_plain(P, x)
    assert torch.allclose(fast, plain, atol=1e-5)
    assert torch.equal(pop.vector(), elite)  # the plain reference restores the model
    assert torch.allclose(pop.fitness(P, x), (plain - x).abs().flatten(1).mean(1), atol=1e-6)


def test_upsampling_is_fused_only_by_integer_factors():
    from aelab.training.subpixel import integer_scale
    assert integer_scale(torch.nn.Upsample(size=(8, 12), mode="nearest"), (4, 4)) == (2, 3)
    assert integer_scale(torch.nn.Upsample(size=(7, 7), mode="nearest"), (4, 4)) is None
    assert integer_scale(torch.nn.Upsample(scale_factor=2, mode="nearest"), (4, 4)) == (2, 2)
    assert integer_scale(torch.nn.Upsample(scale_factor=1.5, mode="nearest"), (4, 4)) is None


def test_in_place_breeding_leaves_the_returned_best_alone():
    model = build_model(ModelSpec(encoder=[4], latent_dim=2), (1, 4, 4))
    pop = Population(model)
    gen = torch.Generator().manual_seed(0)
    ga = GA(TrainSpec(method="ga", population=6, mutated_weights=3), pop, pop.vector(), gen)
    x = torch.rand(5, 1, 4, 4)
    best, _ = ga.step(pop, x, gen)
    kept = best.clone()
    for _ in range(3):
        ga.step(pop, x, gen)
    assert torch.equal(best, kept)
