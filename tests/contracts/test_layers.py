"""The contract every layer of the vocabulary keeps: a layer joins by its
entry in :data:`aelab.models.layers.LAYERS` (builder, the torch classes it
makes, its batched population rule, its mutants rule) and each check runs
for it.

It builds with shape inference and makes the classes it declares, an input
it cannot take is one line naming the layer, a population of networks that
contain it runs in one batched pass exactly as each network alone, and the
GA's sparse mutants score it as the dense population does -- or, where it
declares no mutants rule, the population says so and scores densely.
"""
from __future__ import annotations

import pytest
import torch

from aelab.errors import ModelSpecError
from aelab.models.build import build_model
from aelab.models.layers import ACTIVATION_LAYERS, LAYERS, MIRROR_LAYERS, module_rules
from aelab.spec import ModelSpec
from aelab.training import mutants as mutants_module
from aelab.training.mutants import Mutants
from aelab.training.population import RULES, Population

SHAPE = (1, 8, 8)
CONV = {"type": "conv2d", "filters": 2, "kernel": 3}
# A small encoder around each layer (the decoder mirrors it).
ENCODERS = {
    "dense": [{"type": "dense", "units": 6}],
    "conv2d": [CONV],
    "conv-transpose2d": [{"type": "conv-transpose2d", "filters": 2, "kernel": 3}],
    "maxpool": [CONV, {"type": "maxpool", "size": 2}],
    "upsample": [{"type": "upsample", "size": 2}, CONV],
    "unpool": [{"type": "unpool", "size": 2}, CONV],
    "flatten": [CONV, {"type": "flatten"}],
    "reshape": [{"type": "flatten"}, {"type": "reshape", "shape": [4, 4, 4]}, CONV],
    "dropout": [{"type": "dense", "units": 6}, {"type": "dropout", "rate": 0.2}],
    "batchnorm": [{"type": "dense", "units": 6}, {"type": "batchnorm"}],
}
# An input each layer cannot take (None: it takes any shape).
REFUSES = {
    "dense": None, "flatten": None, "dropout": None,
    "conv2d": ((6,), "expects an image input"), "conv-transpose2d": ((6,), "expects an image input"),
    "maxpool": ((1, 1, 1), "pool size 2 does not fit"), "upsample": ((6,), "expects an image input"),
    "unpool": ((6,), "expects an image input"), "reshape": ((5,), "cannot reshape"),
    "batchnorm": ((1, 2), "batchnorm expects"),
}
BAD = {"dense": {}, "flatten": {}, "dropout": {"rate": 0.2}, "conv2d": {"filters": 2, "kernel": 3},
       "conv-transpose2d": {"filters": 2, "kernel": 3}, "maxpool": {"size": 2}, "upsample": {"size": 2},
       "unpool": {"size": 2}, "reshape": {"shape": [2, 2]}, "batchnorm": {}}
TYPES = sorted(LAYERS)


def network(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = ModelSpec(kind="ae", encoder=ENCODERS[kind], latent_dim=2)
    return build_model(spec, SHAPE, None).eval()


def test_every_layer_has_a_network_and_a_refusal_here():
    """A new layer cannot join the vocabulary without joining this suite."""
    assert set(ENCODERS) == set(LAYERS) == set(REFUSES)


@pytest.mark.parametrize("kind", TYPES)
def test_declares_rules_that_exist(kind):
    layer = LAYERS[kind]
    assert layer.build is not None and layer.modules
    assert layer.population in RULES
    assert layer.mutants in ("weighted", "free", None)


def test_activations_and_mirror_layers_have_rules_too():
    for layer in (*ACTIVATION_LAYERS.values(), *MIRROR_LAYERS.values()):
        assert layer.population in RULES and layer.mutants in ("weighted", "free", None)


@pytest.mark.parametrize("kind", TYPES)
def test_builds_the_classes_it_declares(kind):
    made = {type(m) for m in network(kind).modules() if not list(m.children())}
    assert set(LAYERS[kind].modules) & made
    assert made <= set(module_rules()), made - set(module_rules())  # nothing the population cannot run


@pytest.mark.parametrize("kind", TYPES)
def test_an_input_it_cannot_take_is_one_line_naming_it(kind):
    if REFUSES[kind] is None:
        pytest.skip(f"{kind} takes any input shape")
    shape, message = REFUSES[kind]
    spec = ModelSpec(kind="ae", encoder=[{"type": kind, **BAD[kind]}], latent_dim=2)
    with pytest.raises(ModelSpecError, match=rf"model\.encoder\[0\] \({kind}\): .*{message}") as caught:
        build_model(spec, shape, None)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", TYPES)
def test_a_population_runs_in_one_pass_as_each_network_alone(kind):
    pop = Population(network(kind))
    gen = torch.Generator().manual_seed(1)
    P = pop.vector() + 0.1 * torch.randn(5, pop.size, generator=gen)
    x = torch.rand(7, *SHAPE, generator=gen)
    batched = pop.reconstruct(P, x)
    alone = pop.reconstruct_plain(P, x)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", TYPES)
def test_mutants_score_as_the_dense_population_or_say_they_cannot(kind):
    pop = Population(network(kind))
    sparse = mutants_module.supports(pop.plan)
    declared = {LAYERS[kind].mutants} | {module_rules()[type(m)].mutants for m in pop.model.modules()
                                         if not list(m.children())}
    assert sparse == (None not in declared)
    gen = torch.Generator().manual_seed(2)
    parent = pop.vector()
    rows = torch.arange(1, 6).repeat_interleave(3)
    index = torch.randint(pop.size, (15,), generator=gen)
    m = Mutants(parent, 6, rows, index, torch.rand(15, generator=gen) * 2 - 1)
    x = torch.rand(7, *SHAPE, generator=gen)
    torch.testing.assert_close(pop.fitness_mutants(m, x), pop.fitness(m.dense(), x), rtol=1e-5, atol=1e-6)
