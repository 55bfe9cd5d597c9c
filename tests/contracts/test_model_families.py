"""The contract every model family keeps (Optuna's ``testing/`` habit): a
family joins by being registered -- ``FAMILIES`` below is the registry --
and each check runs for it.

It builds from its spec, a layer that does not fit is one line naming the
layer, it trains, saves and loads (safetensors + JSON), resumes bit-exactly
after SIGKILL, writes the metrics it declares, describes itself in one line,
and passes the checks of every capability it declares.
"""
from __future__ import annotations

import copy
import json
import signal

import numpy as np
import pytest
import torch

import aelab
from aelab.data import load_dataset
from aelab.errors import ModelSpecError
from aelab.models.family import (CAPABILITIES, CLASSIFY, CONDITIONAL, DECODE, EMBED, GENERATIVE, capabilities_of,
                                 conditioned, families, family, kinds)
from aelab.pipeline import build
from aelab.runs import load_model
from aelab.spec import load_config
from conftest import TINY, TRAIN_BUDGET, train_killed_after_rows
from test_training import assert_resumes_to_the_uninterrupted_run

FAMILIES = kinds()


def config(kind: str, **train) -> dict:
    """TINY's data as the family's own small example, trained by its
    default method (the first it lists) on a small budget."""
    cfg = copy.deepcopy(TINY)
    fam = family(kind)
    cfg["model"] = {"kind": kind, **copy.deepcopy(fam.example)}
    method = fam.methods[0]
    cfg["train"] = {"method": method, "seed": 0, **TRAIN_BUDGET[method], **train}
    return cfg


def layers_key(kind: str) -> str:
    """The family's first layer list (``encoder``, ``discriminator``, ...)."""
    return next(k for k, v in family(kind).example.items() if isinstance(v, list))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """One finished run per family."""
    root = tmp_path_factory.mktemp("families")
    return {k: aelab.train(config(k, epochs=2), out=root / k) for k in FAMILIES}


@pytest.fixture(scope="module")
def digits():
    return load_dataset(load_config(TINY).data)


def batch(data, n: int = 8):
    return torch.as_tensor(data.x_test[:n]), torch.as_tensor(data.y_test[:n])


def test_the_registry_lists_every_family_with_what_it_declares():
    assert {"ae", "vae", "classifier", "cvae"} <= set(FAMILIES)
    for f in families():
        assert f.kind and f.description and f.capabilities <= set(CAPABILITIES), f.kind
        assert "\n" not in f.description


@pytest.mark.parametrize("kind", FAMILIES)
def test_builds_from_its_spec_and_a_bad_layer_is_one_line_naming_it(kind, digits):
    cfg = load_config(config(kind))
    model = build(cfg, digits, torch.device("cpu"), warn=False)
    assert model.kind == kind
    bad = config(kind)
    key = layers_key(kind)
    bad["model"][key] = [{"type": "conv2d", "filters": 2, "kernel": 9}]
    with pytest.raises(ModelSpecError, match=rf"model\.{key}\[0\] \(conv2d\): kernel 9"):
        build(load_config(bad), digits, torch.device("cpu"), warn=False)


@pytest.mark.parametrize("kind", FAMILIES)
def test_trains_and_writes_the_metrics_it_declares(kind, trained):
    run = trained[kind]
    assert run.status == "completed" and run.metrics["epochs_trained"] == 2
    fam = family(kind)
    missing = [m for m in fam.metric_names if m not in run.metrics]
    assert not missing, missing
    line = run.config.model.describe(run.model_info)
    assert line.startswith(kind) and "\n" not in line


@pytest.mark.parametrize("kind", FAMILIES)
def test_saves_and_loads_to_the_same_outputs(kind, trained, digits):
    run = trained[kind]
    a, b = load_model(run.path), load_model(run.path)
    assert (run.path / "model.safetensors").exists() and json.loads((run.path / "model.json").read_text())
    x, y = batch(digits)
    with torch.no_grad():
        out_a, out_b = _outputs(a, x, y), _outputs(b, x, y)
    assert out_a.keys() == out_b.keys() and all(torch.equal(out_a[k], out_b[k]) for k in out_a)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def _outputs(model, x, y) -> dict:
    """What the model computes from images (it embeds) or from codes (it only decodes)."""
    model.eval()
    if EMBED in capabilities_of(model):
        return dict(model(*_args(model, x, y)))
    z = torch.randn(len(x), model.latent_dim, generator=torch.Generator().manual_seed(0))
    return {"x_hat": model.decode(z, *_cond(model, y))}


@pytest.mark.parametrize("kind", FAMILIES)
def test_resumes_bit_exactly_after_sigkill(kind, tmp_path):
    cfg = config(kind, epochs=3)
    killed = tmp_path / "killed"
    assert train_killed_after_rows(cfg, killed, 2) == -signal.SIGKILL
    assert_resumes_to_the_uninterrupted_run(killed, cfg, tmp_path / "straight")


# ------------------------------------------------------ capability checks


def _families_with(capability: str) -> list[str]:
    return [f.kind for f in families() if f.has(capability)]


@pytest.mark.parametrize("kind", _families_with(EMBED))
def test_embed_gives_one_finite_code_per_image(kind, trained, digits):
    model = load_model(trained[kind].path)
    x, y = batch(digits)
    with torch.no_grad():
        z = model.embed(*_args(model, x, y))
    assert z.dim() == 2 and len(z) == len(x) and torch.isfinite(z).all()


@pytest.mark.parametrize("kind", _families_with(DECODE))
def test_decode_maps_codes_back_to_images(kind, trained, digits):
    model = load_model(trained[kind].path)
    z = torch.randn(5, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = model.decode(z, *_cond(model, torch.arange(5) % 10))
    assert tuple(images.shape) == (5, *digits.shape) and torch.isfinite(images).all()


@pytest.mark.parametrize("kind", _families_with(GENERATIVE))
def test_generative_families_sample_from_their_prior(kind, trained, digits):
    model = load_model(trained[kind].path)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    with torch.no_grad():
        a, b = model.sample(6, generator=gen()), model.sample(6, generator=gen())
    assert tuple(a.shape) == (6, *digits.shape) and torch.equal(a, b)  # seeded: repeatable


@pytest.mark.parametrize("kind", _families_with(CONDITIONAL))
def test_conditional_families_decode_the_class_they_are_given(kind, trained):
    model = load_model(trained[kind].path)
    z = torch.zeros(10, model.latent_dim)
    with torch.no_grad():
        per_class = model.decode(z, torch.arange(10))
        soft = model.decode(z[:1], torch.eye(10)[3:4])                 # a probability vector as condition
        sampled = model.sample(4, torch.full((4,), 7), generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(per_class[0], per_class[1])             # the label changes the image
    assert torch.allclose(soft[0], per_class[3], atol=1e-6)           # one-hot = the label
    assert sampled.shape[0] == 4


@pytest.mark.parametrize("kind", _families_with(CLASSIFY))
def test_classifiers_give_probabilities(kind, trained, digits):
    model = load_model(trained[kind].path)
    x, _ = batch(digits)
    with torch.no_grad():
        p = model.predict_proba(x)
    assert p.shape == (len(x), digits.num_classes) and torch.allclose(p.sum(1), torch.ones(len(x)))


def _cond(model, y) -> tuple:
    """The labels a conditional model takes, nothing for the others."""
    return conditioned(model, y)


def _args(model, x, y) -> tuple:
    return (x, *_cond(model, y))


def test_a_family_that_needs_labels_refuses_unlabelled_data_in_one_line(tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 8, 8)).astype(np.float32))
    for kind in [f.kind for f in families() if f.needs_labels]:
        cfg = config(kind) | {"data": {"name": "npz", "path": str(path)}}
        with pytest.raises(ModelSpecError, match=f"model.kind: {kind} needs labelled data"):
            aelab.train(cfg, out=tmp_path / kind)
        assert not (tmp_path / kind).exists()
