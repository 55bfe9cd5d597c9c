"""Every shipped config validates, builds and trains one epoch (offline).

Parametrized over ``configs/*.yaml`` so that a new config is covered without
editing this file.  Configs whose data set must be downloaded are only
validated and built on the data set's registered shape.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import aelab
from aelab.data import download, registry
from aelab.models import build_model, count_parameters
from aelab.runs import CONFIG
from aelab.spec import dump_config, load_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
FAST_GRADIENT = ["train.epochs=1", "eval.figures=false"]
FAST_EVOLUTION = ["train.generations=1", "train.max_seconds=30", "eval.figures=false"]


SUBSET = 1000  # images a config trains on here: enough for every layer and metric, a fifth of mnist-5k


def fast(path) -> list[str]:
    """One epoch (gradient, adversarial) or one generation (GA/ES), no figures, at most
    SUBSET images and a 300-image evaluation."""
    cfg = load_config(path)
    budget = FAST_GRADIENT if "epochs" in type(cfg.train).model_fields else FAST_EVOLUTION
    subset = [f"data.samples={SUBSET}"] if cfg.data.samples is None or cfg.data.samples > SUBSET else []
    return budget + subset + ["eval.max_samples=300"]


def needs_download(path: Path) -> bool:
    return registry.ENTRIES[load_config(path).data.name].kind == "download"


OFFLINE = [p for p in CONFIGS if not needs_download(p)]
DOWNLOAD = [p for p in CONFIGS if needs_download(p)]


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Fail loudly instead of downloading anything."""
    monkeypatch.setenv("AELAB_DATA_DIR", str(tmp_path / "data-cache"))

    def refuse(*args, **kwargs):
        raise AssertionError(f"test tried to download: {args}")
    monkeypatch.setattr(download, "fetch_url", refuse)


def test_configs_are_found():
    names = {p.stem for p in CONFIGS}
    assert {"mnist-vae", "ga-conv-ae", "digits-ae", "fashion-vae"} <= names
    assert "fashion-vae" in {p.stem for p in DOWNLOAD}
    assert len(OFFLINE) >= 7


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_round_trips(path, tmp_path):
    cfg = load_config(path)
    assert cfg.name in (None, path.stem)
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(dump_config(cfg))
    assert load_config(dumped) == cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_on_its_data_shape(path, no_network):
    cfg = load_config(path)
    shape = registry.ENTRIES[cfg.data.name].shape
    if cfg.data.resize is not None:
        shape = (shape[0], *cfg.data.resize)
    torch.manual_seed(0)
    model = build_model(cfg.model, shape, num_classes=10).eval()
    assert count_parameters(model) > 0
    from aelab.models.family import EMBED, capabilities_of, conditioned
    cond = conditioned(model, torch.tensor([3, 8]))  # a conditional model gets two labels
    with torch.no_grad():  # images in, or (a generator only) codes in
        out = model(torch.rand(2, *shape), *cond) if EMBED in capabilities_of(model) else \
            {"x_hat": model.decode(torch.randn(2, model.latent_dim), *cond)}
    if cfg.model.kind == "classifier":
        assert out["logits"].shape[0] == 2
    else:
        assert out["x_hat"].shape == (2, *shape)
        assert torch.isfinite(out["x_hat"]).all()


def test_fashion_vae_builds_without_download(no_network):
    cfg = load_config(CONFIG_DIR / "fashion-vae.yaml")
    assert cfg.data.name == "fashion-mnist" and cfg.model.kind == "vae"
    assert registry.ENTRIES["fashion-mnist"].shape == (1, 28, 28)
    model = build_model(cfg.model, (1, 28, 28)).train()
    out = model(torch.rand(3, 1, 28, 28))
    assert out["x_hat"].shape == (3, 1, 28, 28)
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (3, cfg.model.latent_dim)


@pytest.mark.parametrize("path", OFFLINE, ids=lambda p: p.stem)
def test_config_trains_one_epoch(path, tmp_path, no_network):
    original = load_config(path)
    run = aelab.train(path, overrides=fast(path), out=tmp_path / "run")
    assert run.status == "completed", run.metrics
    from aelab.models.family import GENERATION_METRICS, family
    score = (family(original.model.kind).metric_names + GENERATION_METRICS)[0]  # recon_mse, accuracy, diversity
    assert math.isfinite(run.metrics[score]), run.metrics
    assert run.metrics["epochs_trained"] == 1 and len(run.history) == 1
    assert math.isfinite(run.metrics["train_loss"])
    # only the overridden keys changed; the architecture is the config's, with what its family
    # reads from the data filled in (Family.resolved: beta-TCVAE's N)
    from aelab.data import load_dataset
    assert run.config.model == family(original.model.kind).resolved(original.model, load_dataset(run.config.data))
    assert run.config.data.model_dump(exclude={"samples"}) == original.data.model_dump(exclude={"samples"})
    assert run.config.train.budget == 1 and run.config.eval.figures is False
    assert load_config(tmp_path / "run" / CONFIG) == run.config
    shape = tuple(run.model_info["input_shape"])
    assert run.metrics["parameters"] == count_parameters(build_model(original.model, shape, 10))
