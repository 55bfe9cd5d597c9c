"""The GAN family and the adversarial trainer: the losses against their
papers' formulas, the gradient penalty against its closed form, the
alternation and the moving average, bad input, and a GAN as an LSO
decoder.  (Building, training, saving, bit-exact resume and the
capability checks are the contract suites' work.)"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import aelab
from aelab import lso
from aelab.errors import AelabError, ConfigError, ModelSpecError
from aelab.pipeline import build, tensors
from aelab.spec import load_config
from aelab.training.methods.adversarial.trainer import (AdversarialTrainer, discriminator_loss,
                                                          generator_loss, gradient_penalty)
from conftest import TINY, TRAIN_BUDGET


def gan_config(**train) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["model"] = {"kind": "gan", "discriminator": [16], "latent_dim": 4}
    cfg["train"] = {"method": "adversarial", "seed": 0, **TRAIN_BUDGET["adversarial"], **train}
    return cfg


REAL, FAKE = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])


def test_the_non_saturating_losses_are_the_papers_cross_entropies():
    """Goodfellow et al. 2014: D maximizes log D(x) + log(1 - D(G(z))); G
    maximizes log D(G(z)) (the non-saturating form, their section 3)."""
    d = F.binary_cross_entropy_with_logits(REAL, torch.ones(3)) + \
        F.binary_cross_entropy_with_logits(FAKE, torch.zeros(3))
    torch.testing.assert_close(discriminator_loss("non_saturating", REAL, FAKE), d)
    torch.testing.assert_close(generator_loss("non_saturating", FAKE),
                               F.binary_cross_entropy_with_logits(FAKE, torch.ones(3)))


def test_the_hinge_and_wasserstein_losses():
    hinge = (torch.clamp(1 - REAL, min=0).mean() + torch.clamp(1 + FAKE, min=0).mean())
    torch.testing.assert_close(discriminator_loss("hinge", REAL, FAKE), hinge)
    torch.testing.assert_close(discriminator_loss("wgan-gp", REAL, FAKE), FAKE.mean() - REAL.mean())
    torch.testing.assert_close(generator_loss("hinge", FAKE), -FAKE.mean())


def test_the_gradient_penalty_of_a_linear_critic_is_its_closed_form():
    """D(x) = <w, x> has gradient w everywhere: the penalty is (|w| - 1)^2
    (Gulrajani et al. 2017, eq. 3), whatever the interpolation weights."""
    w = torch.tensor([[3.0, 4.0]])
    penalty = gradient_penalty(lambda x: (x * w).sum(1), torch.randn(5, 2), torch.randn(5, 2))
    torch.testing.assert_close(penalty, torch.tensor(16.0))


def _runner(cfg: dict):
    cfg = load_config(cfg)
    from aelab.data import load_dataset
    data = load_dataset(cfg.data)
    model = build(cfg, data, torch.device("cpu"), warn=False)
    return AdversarialTrainer(model, cfg.train), tensors(data, "cpu")


def test_the_generator_steps_once_every_n_critic_discriminator_steps():
    runner, data = _runner(gan_config(epochs=2, n_critic=3, batch_size=100))
    runner.fit(*data)
    batches = -(-len(data[0]) // 100)
    d_steps = runner.opt_d.state[next(iter(runner.opt_d.state))]["step"]
    g_steps = runner.opt_g.state[next(iter(runner.opt_g.state))]["step"]
    assert (int(d_steps), int(g_steps)) == (2 * batches, 2 * (batches // 3))


def test_the_moving_average_becomes_the_generator():
    """One generator step (one batch, one epoch): with decay 0.5 the final
    generator is halfway between its initial and its trained weights (the
    average does not change the training itself)."""
    plain, data = _runner(gan_config(epochs=1, batch_size=5000))
    start = [p.detach().clone() for p in plain.model.generator.parameters()]
    plain.fit(*data)
    averaged, data = _runner(gan_config(epochs=1, batch_size=5000, ema=0.5))
    averaged.fit(*data)
    for p0, p1, pe in zip(start, plain.model.generator.parameters(), averaged.model.generator.parameters()):
        torch.testing.assert_close(pe, 0.5 * p0 + 0.5 * p1)


def test_a_run_writes_its_losses_and_sample_figures(tmp_path):
    cfg = gan_config()
    cfg["eval"] = {**cfg["eval"], "figures": True}
    run = aelab.train(cfg, out=tmp_path / "gan")
    row = run.history[-1]
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(row) and 0 < row["d_real"] < 1
    assert {"loss_curves.png", "discriminator.png", "samples.png"} <= {p.name for p in (run.path / "figures").iterdir()}
    assert run.metrics["diversity"] > 0 and run.metrics["nn_distance"] > 0
    assert "adversarial (non_saturating)" in (run.path / "report.md").read_text()


def test_only_the_adversarial_trainer_trains_a_gan_and_it_trains_only_gans():
    for method, fields in (("gradient", {}), ("ga", {"population": 4})):
        cfg = gan_config()
        cfg["train"] = {"method": method, **fields}
        with pytest.raises(ConfigError, match=f"train.method: {method} cannot train kind gan "
                                              r"\(it trains with: adversarial\)"):
            aelab.train(cfg, out="/nonexistent/never-written")
    ae = copy.deepcopy(TINY)
    ae["train"] = {"method": "adversarial"}
    with pytest.raises(ConfigError, match="train.method: adversarial cannot train kind ae"):
        aelab.train(ae, out="/nonexistent/never-written")


@pytest.mark.parametrize("kind", ["gan", "cgan"])
def test_a_discriminator_layer_that_does_not_fit_names_itself(kind):
    cfg = gan_config()
    cfg["model"] |= {"kind": kind, "discriminator": [{"type": "conv2d", "filters": 4, "kernel": 9}]}
    with pytest.raises(ModelSpecError, match=r"model\.discriminator\[0\] \(conv2d\): kernel 9"):
        _runner(cfg)


def test_a_generator_layer_that_does_not_fit_names_itself():
    cfg = gan_config()
    cfg["model"]["generator"] = [{"type": "conv2d", "filters": 2, "kernel": 3}]
    with pytest.raises(ModelSpecError, match=r"model\.generator\[0\] \(conv2d\): expects an image input"):
        _runner(cfg)
    cfg["model"]["generator"] = [{"type": "dense", "units": 10}]
    with pytest.raises(ModelSpecError, match=r"model\.generator: output shape \(10\) does not match"):
        _runner(cfg)


@pytest.fixture(scope="module")
def gan_and_classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan-lso")
    gan = aelab.train(gan_config(epochs=6), out=root / "gan")
    clf = copy.deepcopy(TINY)
    clf["model"] = {"kind": "classifier", "encoder": [32]}
    return gan.path, aelab.train(clf, out=root / "clf").path


def test_lso_optimizes_through_a_gan_generator_from_its_prior(gan_and_classifier, tmp_path):
    gan, clf = gan_and_classifier
    setup = lso.prepare(clf, gan, lso.LSOOptions(optimizer="adam", lr=0.05, shell=True))
    assert setup.options.start == "prior" and setup.model.latent_dim == 4
    summary = lso.run_lso(clf, ["3"], gan, 4, tmp_path / "out",
                          lso.LSOOptions(optimizer="adam", lr=0.05, shell=True, steps=30, restarts=2),
                          judge=clf, evaluate_samples=True)
    assert 0.0 <= summary["success_rate"] <= 1.0 and (tmp_path / "out").exists()
    overall = summary["evaluation"]["table"][-1]  # judged like any decoder; no encoder, so no realism score
    assert overall["recon_error"] != overall["recon_error"] and overall["nearest_train"] > 0
    assert 0 <= summary["evaluation"]["precision"] <= 1 and summary["evaluation"]["fid"] >= 0


@pytest.mark.parametrize("option, message", [({"start": "encodings"}, "--start encodings: needs the training codes"),
                                             ({"box": 3.0}, "--box: needs the training codes")])
def test_what_needs_an_encoder_says_so_for_a_gan(gan_and_classifier, option, message):
    gan, clf = gan_and_classifier
    with pytest.raises(AelabError, match=message):
        lso.prepare(clf, gan, lso.LSOOptions(**option))


def test_the_explorer_says_a_gan_has_no_encoder(gan_and_classifier):
    from aelab.explore import build_app
    with pytest.raises(AelabError, match="explore needs a model that embeds and decodes"):
        build_app(gan_and_classifier[0])


def _scripted_diversity(monkeypatch, values):
    """Make the monitor report ``values`` epoch by epoch (the rest of the run is real)."""
    from aelab.training.methods.adversarial import trainer as T
    seq = iter(values)
    monkeypatch.setattr(T.Monitor, "diversity", lambda self, samples: next(seq))


def test_samples_that_lose_their_diversity_stop_the_run_as_collapsed(monkeypatch, tmp_path):
    """Reached 0.2 of the real images' diversity, then below it for
    collapse_patience epochs: status collapsed, one warning, and the run is
    still measured and drawn (its weights are finite)."""
    _scripted_diversity(monkeypatch, [0.1, 0.5, 0.6, 0.1, 0.05, 0.04, 0.9])
    cfg = gan_config(epochs=7, collapse=0.2, collapse_patience=3)
    cfg["eval"] = {**cfg["eval"], "figures": True}
    with pytest.warns(UserWarning, match=r"train: the generator collapsed at epoch 6: its samples' diversity fell "
                                         r"from 0\.60 to below 0\.2 of the real images' for 3 epochs"):
        run = aelab.train(cfg, out=tmp_path / "run")
    assert run.status == "collapsed" and run.metrics["epochs_trained"] == run.metrics["collapsed_epoch"] == 6
    assert [r["diversity"] for r in run.history] == [0.1, 0.5, 0.6, 0.1, 0.05, 0.04]
    assert run.metrics["nn_distance"] > 0 and (run.path / "figures" / "samples.png").exists()


@pytest.mark.parametrize("values, collapse", [([0.01, 0.02, 0.05, 0.3, 0.4, 0.5], 0.2),   # a fresh generator
                                              ([0.5, 0.1, 0.1, 0.5, 0.1, 0.1], 0.2),      # it recovered
                                              ([0.5, 0.01, 0.01, 0.01, 0.01, 0.01], 0.0)])  # check turned off
def test_low_diversity_that_is_not_a_collapse_lets_the_run_finish(monkeypatch, tmp_path, values, collapse):
    _scripted_diversity(monkeypatch, values)
    run = aelab.train(gan_config(epochs=6, collapse=collapse), out=tmp_path / "run")
    assert run.status == "completed" and run.metrics["epochs_trained"] == 6


def test_samples_that_never_vary_are_a_warning(monkeypatch, tmp_path):
    _scripted_diversity(monkeypatch, [0.01] * 4)
    with pytest.warns(UserWarning, match=r"never reached 0\.2 of the real images' diversity \(best 0\.010\)"):
        run = aelab.train(gan_config(epochs=4), out=tmp_path / "run")
    assert run.status == "completed"


def test_the_strip_keeps_fixed_codes_samples_every_n_epochs_and_survives_a_checkpoint():
    runner, data = _runner(gan_config(epochs=5, snapshot_every=2))
    runner.fit(*data)
    epochs = [e for e, _ in runner.state.stages]
    assert epochs == [0, 2, 4, 5] and all(v.shape == (10, 1, 8, 8) for _, v in runner.state.stages)
    # the fixed codes: the same samples again from the final weights
    torch.testing.assert_close(runner.monitor.samples(runner.model)[:10].cpu(), runner.state.stages[-1][1])
    tensors_, meta = runner.checkpoint()
    other, _ = _runner(gan_config(epochs=5, snapshot_every=2))
    other.restore(tensors_, meta)
    assert [e for e, _ in other.state.stages] == epochs
    for (_, a), (_, b) in zip(other.state.stages, runner.state.stages):
        torch.testing.assert_close(a, b)
