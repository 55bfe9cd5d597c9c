"""Oracle tests for the mutants path: a population of one parent's mutants
scored as the parent's network plus sparse corrections must equal scoring
the same population as P independent networks (the general batched path,
itself tested against one forward per individual in test_evolution.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from aelab.models import build_model
from aelab.models.autoencoder import Autoencoder
from aelab.spec import ModelSpec, TrainSpec, load_config
from aelab.training import population as population_module
from aelab.training.strategies.ga import GA
from aelab.training.mutants import Mutants
from aelab.training.population import Population

ENCODER = [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1}, {"type": "maxpool"},
           {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2, "padding": 1}, 6]
DECODER = [6, 16, {"type": "reshape", "shape": [4, 2, 2]}, {"type": "unpool"},
           {"type": "conv-transpose2d", "filters": 3, "kernel": 3, "padding": 1},
           {"type": "upsample", "size": 2}, {"type": "conv-transpose2d", "filters": 2, "kernel": 4, "padding": 1},
           {"type": "conv-transpose2d", "filters": 1, "kernel": 3, "stride": 2, "padding": 1},
           {"type": "reshape", "shape": [289]}, {"type": "dense", "units": 64}]
SPECS = {
    "dense": ({"encoder": [16, 8], "latent_dim": 2}, (1, 8, 8)),
    "conv": ({"encoder": ENCODER, "latent_dim": 2, "activation": "tanh"}, (1, 8, 8)),
    "conv+decoder": ({"encoder": ENCODER, "latent_dim": 2, "decoder": DECODER, "activation": "elu"}, (1, 8, 8)),
}


def grouped_dilated() -> tuple[Autoencoder, tuple[int, int, int]]:
    """Layers the config language does not write: groups, dilation, a
    transposed convolution with output padding and groups."""
    body = nn.Sequential(nn.Conv2d(2, 4, 3, padding=2, dilation=2, groups=2), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Sigmoid(), nn.Flatten())
    decoder = nn.Sequential(nn.Linear(3, 64), nn.Tanh(), nn.Unflatten(1, (4, 4, 4)),
                            nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2), nn.Sigmoid())
    return Autoencoder(body, nn.Sequential(nn.Linear(64, 3)), decoder).eval(), (2, 8, 8)


def odd_upsampling() -> tuple[Autoencoder, tuple[int, int, int]]:
    """A nearest upsampling by a non-integer factor (4 -> 7) before a
    transposed convolution: not fused, corrected through the copy map."""
    body = nn.Sequential(nn.Flatten(), nn.Linear(49, 4), nn.Sigmoid())
    decoder = nn.Sequential(nn.Linear(2, 16), nn.Sigmoid(), nn.Unflatten(1, (1, 4, 4)),
                            nn.Upsample(size=(7, 7), mode="nearest"), nn.ConvTranspose2d(1, 1, 3, padding=1))
    return Autoencoder(body, nn.Sequential(nn.Linear(4, 2)), decoder).eval(), (1, 7, 7)


def mutants_touching_every_parameter(pop: Population, size: int, k: int, seed: int = 0) -> Mutants:
    """Random mutants with k changes per child, plus: one change in every
    parameter tensor (biases included), a repeated gene within one child,
    and a last child left equal to the parent."""
    g = torch.Generator().manual_seed(seed)
    parent = pop.vector() + 0.3 * torch.randn(pop.size, generator=g)
    rows = torch.arange(1, size - 1).repeat_interleave(k)
    index = torch.randint(pop.size, (len(rows),), generator=g)
    every = torch.tensor(pop.offsets[:-1])  # first entry of each parameter tensor
    rows = torch.cat([rows, torch.arange(len(every)) % (size - 2) + 1, torch.tensor([1, 1])])
    index = torch.cat([index, every, torch.tensor([pop.offsets[-1] - 1] * 2)])
    delta = torch.rand(len(rows), generator=g) * 2 - 1
    return Mutants(parent, size, rows, index, delta)


def no_fallback(monkeypatch) -> None:
    """Make the general path fail, so a test proves the mutants path ran."""
    def refuse(*a, **k):
        raise AssertionError("fitness_mutants fell back to the general path")
    monkeypatch.setattr(Population, "fitness", refuse)


@pytest.mark.parametrize("name", [*SPECS, "grouped-dilated", "odd-upsampling", "ga-paper"])
@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_mutants_score_like_the_same_population_of_networks(name, kind, monkeypatch):
    torch.manual_seed(0)
    if name in ("grouped-dilated", "odd-upsampling"):
        model, shape = grouped_dilated() if name == "grouped-dilated" else odd_upsampling()
    elif name == "ga-paper":
        model, shape = build_model(load_config("configs/ga-conv-ae.yaml").model, (1, 28, 28)).eval(), (1, 28, 28)
    else:
        spec, shape = SPECS[name]
        model = build_model(ModelSpec.model_validate(spec), shape).eval()
    pop = Population(model)
    assert pop.sparse
    before = pop.vector()
    m = mutants_touching_every_parameter(pop, size=9, k=4)
    x = torch.rand(5, *shape)
    expected = pop.fitness(m.dense(), x, kind)
    no_fallback(monkeypatch)
    assert torch.allclose(pop.fitness_mutants(m, x, kind), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(pop.vector(), before)  # the model itself is never written


def test_a_new_parent_is_not_scored_with_the_last_ones_weights():
    cfg = load_config("configs/ga-conv-ae.yaml")
    torch.manual_seed(0)
    pop = Population(build_model(cfg.model, (1, 28, 28)).eval())
    x = torch.rand(4, 1, 28, 28)
    for seed in (0, 1, 0):  # the prepared parent is reused only while it is the same
        m = mutants_touching_every_parameter(pop, size=6, k=3, seed=seed)
        assert torch.allclose(pop.fitness_mutants(m, x), pop.fitness(m.dense(), x), atol=1e-6)


def test_mutants_are_scored_in_chunks_like_the_population(monkeypatch):
    spec, shape = SPECS["conv+decoder"]
    torch.manual_seed(0)
    pop = Population(build_model(ModelSpec.model_validate(spec), shape).eval())
    m = mutants_touching_every_parameter(pop, size=9, k=4)
    x = torch.rand(5, *shape)
    whole = pop.fitness_mutants(m, x)
    monkeypatch.setattr(population_module, "CHUNK_ELEMENTS", 2 * 64 * 5)  # two individuals per chunk
    assert torch.allclose(pop.fitness_mutants(m, x), whole, atol=1e-7)
    assert m.chunk(2, 5).size == 3 and torch.equal(m.chunk(2, 5).dense(), m.dense()[2:5])


def test_layers_without_a_correction_rule_and_dense_changes_use_the_general_path(monkeypatch):
    torch.manual_seed(0)
    bn = build_model(ModelSpec.model_validate(
        {"encoder": [{"type": "conv2d", "filters": 2, "kernel": 3}, {"type": "batchnorm"}, 4], "latent_dim": 2}),
        (1, 6, 6)).eval()
    pop = Population(bn)
    assert not pop.sparse
    m = mutants_touching_every_parameter(pop, size=5, k=2)
    x = torch.rand(3, 1, 6, 6)
    assert torch.allclose(pop.fitness_mutants(m, x), pop.fitness(m.dense(), x))

    dense = Population(build_model(ModelSpec(encoder=[4], latent_dim=2), (1, 4, 4)).eval())
    many = mutants_touching_every_parameter(dense, size=4, k=population_module.SPARSE_CHANGES * 2)
    calls = []
    real = Population.fitness
    monkeypatch.setattr(Population, "fitness", lambda self, P, *a, **k: calls.append(len(P)) or real(self, P, *a, **k))
    dense.fitness_mutants(many, torch.rand(3, 1, 4, 4))
    assert calls == [4]  # too many changes per child: scored as a plain population


def ga(pop, **over) -> GA:
    spec = TrainSpec(**{"method": "ga", "population": 8, "mutated_weights": 4, **over})
    return GA(spec, pop, pop.vector(), torch.Generator().manual_seed(0))


@pytest.mark.parametrize("over", [{}, {"mutation": "gaussian", "mutation_rate": 0.05, "sigma": 0.2},
                                  {"adaptive": True}])
def test_the_papers_ga_breeds_mutants_that_match_its_population(over):
    torch.manual_seed(0)
    pop = Population(build_model(ModelSpec(encoder=[8], latent_dim=2), (1, 4, 4)).eval())
    g, x = ga(pop, **over), torch.rand(6, 1, 4, 4)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        best, _ = g.step(pop, x, gen)
        m = g.mutants
        assert m is not None and torch.equal(m.parent, best)
        D = m.dense()
        assert torch.equal(D[0], best)  # the one elite: the best, unchanged
        if over.get("mutation") == "gaussian":  # the GA also mutated a dense copy: same population
            assert torch.equal(D, g._P)
        else:  # lazily bred: each child is the best with at most k = 4 genes changed
            changed = (D[1:] != best).sum(1)
            assert ((changed >= 1) & (changed <= 4)).all(), changed


def test_other_selection_schemes_breed_no_mutants():
    pop = Population(build_model(ModelSpec(encoder=[8], latent_dim=2), (1, 4, 4)).eval())
    for over in ({"selection": "tournament"}, {"elitism": 2}, {"crossover": "uniform"}):
        g = ga(pop, **over)
        g.step(pop, torch.rand(6, 1, 4, 4), torch.Generator().manual_seed(1))
        assert g.mutants is None, over


def test_evolution_through_mutants_follows_the_general_path():
    """Same seed, same data: the GA paper's run scored through mutants and
    through P networks keeps the same individuals generation by generation."""
    cfg = load_config("configs/ga-conv-ae.yaml")
    x = torch.rand(4, 1, 28, 28) * 0.8 + 0.1
    runs = []
    for sparse in (True, False):
        torch.manual_seed(0)
        pop = Population(build_model(cfg.model, (1, 28, 28)).eval(), use_mutants=sparse)
        assert pop.sparse == sparse
        g, gen = ga(pop, population=10, mutated_weights=10), torch.Generator().manual_seed(0)
        runs.append([g.step(pop, x, gen)[1] for _ in range(15)] + [g.P])
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*runs))


def test_a_resumed_ga_keeps_scoring_through_its_mutants(tmp_path):
    """The checkpoint carries the mutants, so the generation after a resume
    is scored exactly as in the uninterrupted run (bit for bit)."""
    from aelab.training.checkpoint import read_tensors_and_state, save_tensors_and_state
    from aelab.training.evolution import EvolutionTrainer
    from aelab.training.gradient import Callback

    class SaveAt(Callback):
        def on_epoch_end(self, trainer) -> None:
            if trainer.state.epoch == 4:
                save_tensors_and_state(tmp_path / "ck.safetensors", *trainer.checkpoint())

    cfg = load_config("configs/ga-conv-ae.yaml", ["train.method=ga", "train.population=6", "train.generations=9",
                                                       "train.log_every=1"])
    x = torch.rand(4, 1, 28, 28) * 0.8 + 0.1
    runs = []
    for restore in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg.model, (1, 28, 28)).eval()
        trainer = EvolutionTrainer(model, cfg.train, [] if restore else [SaveAt()])
        if restore:
            trainer.restore(*read_tensors_and_state(tmp_path / "ck.safetensors"))
            assert trainer.strategy.mutants is not None
        trainer.fit(x, None, x[:2], None)
        runs.append(trainer)
    straight, resumed = runs
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert drop(resumed.state.history) == drop(straight.state.history)
    assert torch.equal(resumed.best, straight.best)


def test_mutants_without_any_change_are_all_the_parent(monkeypatch):
    torch.manual_seed(0)
    pop = Population(build_model(load_config("configs/ga-conv-ae.yaml").model, (1, 28, 28)).eval())
    empty = torch.zeros(0, dtype=torch.long)
    m = Mutants(pop.vector(), 4, empty, empty, torch.zeros(0))
    x = torch.rand(3, 1, 28, 28)
    expected = pop.fitness(m.dense(), x)
    no_fallback(monkeypatch)
    fit = pop.fitness_mutants(m, x)
    assert fit.shape == (4,) and torch.allclose(fit, expected, atol=1e-6) and torch.equal(fit, fit[:1].expand(4))
