"""The autoencoders trained adversarially -- the adversarial autoencoder
(Makhzani et al. 2016), FactorVAE (Kim & Mnih 2018) and the VAE-GAN
(Larsen et al. 2016) -- each one game of the adversarial trainer: every
step's losses and gradients against the papers' equations computed by hand
with the same random draws, the gradients going only where each paper
sends them, the refused settings, then each family trained end to end and
sampled."""
from __future__ import annotations

import copy
import json
import re

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import aelab
from aelab.cli import app
from aelab.errors import ConfigError, ModelSpecError
from aelab.models import build_model
from aelab.models.autoencoder import kld
from aelab.models.families.factorvae.game import FactorGame, halves, permute_dims
from aelab.models.families.aae.game import CodeGame
from aelab.models.families.vaegan.game import FeatureGame
from aelab.spec import load_config, model_spec
from aelab.training.methods.adversarial.config import AdversarialTrain
from conftest import TINY, one_line_config_error

DENSE16 = [{"type": "dense", "units": 16}]
SLOPE = 0.01  # the vocabulary's leaky_relu is torch's nn.LeakyReLU()


def built(kind: str, **fields):
    spec = model_spec(kind, encoder=[16], latent_dim=3, discriminator=DENSE16, **fields)
    torch.manual_seed(0)
    return spec, build_model(spec, (1, 8, 8))


def batch(n: int = 6) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def grads(params) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]


def clear(model) -> None:
    for p in model.parameters():
        p.grad = None


def assert_grads(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ the adversarial autoencoder


def test_the_aae_discriminator_tells_prior_draws_from_codes():
    """Makhzani et al., section 2: prior draws are D's positive samples, the encoder's codes its negative ones."""
    spec, model = built("aae")
    game, x = CodeGame(AdversarialTrain(), "mse", 1.0), batch()
    torch.manual_seed(5)
    loss, _, _ = game.discriminator_backward(model, x, ())
    torch.manual_seed(5)
    with torch.no_grad():
        codes = model.encode(x)
        prior = torch.randn_like(codes)
        expected = F.binary_cross_entropy_with_logits(model.critic(prior), torch.ones(6)) + \
            F.binary_cross_entropy_with_logits(model.critic(codes), torch.zeros(6))
    torch.testing.assert_close(loss, expected)
    assert all(p.grad is None for p in model.decoder.parameters())  # D's step touches only D


@pytest.mark.parametrize("weight", [0.0, 0.5, 2.0])
def test_the_aae_autoencoder_minimizes_reconstruction_plus_the_weighted_encoder_loss(weight):
    spec, model = built("aae", adversarial_weight=weight)
    game, x = CodeGame(AdversarialTrain(), "mse", weight), batch()
    loss, parts = game.generator_backward(model, x, ())
    got = grads(game.generator_parameters(model))
    clear(model)
    out = model(x)
    recon = F.mse_loss(out["x_hat"], x, reduction="sum") / len(x)          # summed over pixels, mean over images
    adversarial = F.softplus(-model.critic(out["z"])).mean()               # -log D(q(z)): codes called prior draws
    (recon + weight * adversarial).backward()
    assert_grads(got, grads(game.generator_parameters(model)))
    torch.testing.assert_close(loss, (recon + weight * adversarial).detach())
    torch.testing.assert_close(parts["recon"], recon.detach())
    # the adversarial term reaches the encoder only: the decoder's gradient is the reconstruction's
    clear(model)
    out = model(x)
    (F.mse_loss(out["x_hat"], x, reduction="sum") / len(x)).backward()
    decoder = {id(p) for p in model.decoder.parameters()}
    assert_grads([g for g, p in zip(got, game.generator_parameters(model)) if id(p) in decoder],
                 grads(model.decoder.parameters()))


def test_the_aae_generator_parameters_are_everything_but_the_discriminator():
    _, model = built("aae")
    game = CodeGame(AdversarialTrain(), "mse", 1.0)
    ids = {id(p) for p in game.generator_parameters(model)}
    assert ids.isdisjoint(id(p) for p in model.discriminator.parameters())
    assert ids | {id(p) for p in model.discriminator.parameters()} == {id(p) for p in model.parameters()}


# ------------------------------------------------------------------ FactorVAE


def test_permute_dims_shuffles_each_dimension_on_its_own():
    """Algorithm 1: every column is a permutation of the batch's column; the rows mix."""
    z = torch.arange(40, dtype=torch.float32).reshape(10, 4) + 100 * torch.arange(4)
    torch.manual_seed(3)
    p = permute_dims(z)
    for j in range(4):
        assert sorted(p[:, j].tolist()) == sorted(z[:, j].tolist())
    rows = {tuple(r) for r in z.tolist()}
    assert sum(tuple(r) not in rows for r in p.tolist()) >= 5   # most rows are new combinations
    torch.manual_seed(3)
    assert torch.equal(permute_dims(z), p)                        # the global RNG, seeded: repeatable


def test_the_batch_splits_into_halves_and_a_single_image_is_both():
    a, b = halves(torch.arange(7))
    assert a.tolist() == [0, 1, 2] and b.tolist() == [3, 4, 5, 6]
    a, b = halves(torch.arange(1))
    assert a.tolist() == b.tolist() == [0]


def test_factorvae_minimizes_the_negative_elbo_plus_gamma_times_the_mean_logit():
    """Eq. 2 with the density-ratio trick: TC(z) ~ E_q[log D/(1-D)] = E_q[logit D(z)]; the VAE
    term on the first half of the batch, whose codes come from one encoder pass over the whole."""
    spec, model = built("factorvae", gamma=7.0)
    model.train()
    game, x = FactorGame(AdversarialTrain(), "bce", 7.0), batch(8)
    torch.manual_seed(11)
    loss, parts = game.generator_backward(model, x, ())
    got = grads(game.generator_parameters(model))
    clear(model)
    torch.manual_seed(11)
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    first = x[:4]
    x_hat = model.decode(z[:4])
    recon = F.binary_cross_entropy(x_hat, first, reduction="sum") / 4
    kl = (-0.5 * (1 + logvar[:4] - mu[:4] ** 2 - logvar[:4].exp()).sum(1)).mean()
    tc = model.discriminator(z[:4]).squeeze(1).mean()
    (recon + kl + 7.0 * tc).backward()
    torch.testing.assert_close(loss, (recon + kl + 7.0 * tc).detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(parts["tc"], tc.detach())
    assert_grads(got, grads(game.generator_parameters(model)))
    assert torch.equal(game.codes[0], z[:4].detach()) and torch.equal(game.codes[1], z[4:].detach())


def test_factorvae_steps_the_vae_then_its_discriminator_on_the_same_codes():
    """Algorithm 2: the VAE's update, then D's, telling the first half's codes (q(z), class 1)
    from the second half's with every dimension permuted (q_bar(z)), all from before the update."""
    assert FactorGame.generator_first
    spec, model = built("factorvae")
    model.train()
    game, x = FactorGame(AdversarialTrain(), "mse", 1.0), batch(8)
    game.generator_backward(model, x, ())
    z_q, z_other = game.codes
    clear(model)
    torch.manual_seed(4)
    loss, _, _ = game.discriminator_backward(model, x, ())
    assert game.codes is None                                   # used once
    torch.manual_seed(4)
    with torch.no_grad():
        expected = F.binary_cross_entropy_with_logits(model.critic(z_q), torch.ones(4)) + \
            F.binary_cross_entropy_with_logits(model.critic(permute_dims(z_other)), torch.zeros(4))
    torch.testing.assert_close(loss, expected)
    assert all(p.grad is None for p in model.body.parameters())


def test_a_factorvae_discriminator_step_without_a_vae_step_encodes_the_halves_itself():
    """n_critic > 1: on batches where the VAE does not step, D's step draws its own codes."""
    spec, model = built("factorvae")
    model.train()
    game, x = FactorGame(AdversarialTrain(), "mse", 1.0), batch(8)
    torch.manual_seed(4)
    loss, _, _ = game.discriminator_backward(model, x, ())
    torch.manual_seed(4)
    with torch.no_grad():
        z_q = model.reparameterize(*model.encode(x[:4]))
        z_bar = permute_dims(model.reparameterize(*model.encode(x[4:])))
        expected = F.binary_cross_entropy_with_logits(model.critic(z_q), torch.ones(4)) + \
            F.binary_cross_entropy_with_logits(model.critic(z_bar), torch.zeros(4))
    torch.testing.assert_close(loss, expected)


def test_the_trainer_steps_a_generator_first_game_in_its_order(monkeypatch):
    """The trainer asks the game which player steps first on a batch (the GAN: D; FactorVAE: the VAE)."""
    import aelab.training.methods.adversarial.trainer as T
    calls = []
    monkeypatch.setattr(T.AdversarialTrainer, "_discriminator_step",
                        lambda self, real, cond: (calls.append("d"), (torch.zeros(()),) * 3)[1])
    monkeypatch.setattr(T.AdversarialTrainer, "_generator_step",
                        lambda self, real, cond: (calls.append("g"), (torch.zeros(()), {}))[1])
    games = {"factorvae": FactorGame(AdversarialTrain(), "mse", 1.0), "aae": CodeGame(AdversarialTrain(), "mse", 1.0)}
    for kind, first in [("factorvae", "g"), ("aae", "d")]:
        spec, model = built(kind)
        trainer = T.AdversarialTrainer(model, AdversarialTrain(epochs=1, batch_size=4), game=games[kind])
        trainer.monitor = T.Monitor(model, batch(8), 0)
        calls.clear()
        trainer._epoch(batch(8), None)
        assert calls == ([first, "d" if first == "g" else "g"] * 2), (kind, calls)


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_factorvae_refuses_a_loss_whose_logit_is_not_a_log_density_ratio(loss, tmp_path):
    cfg = copy.deepcopy(TINY)
    cfg["model"] = {"kind": "factorvae", "encoder": [16], "latent_dim": 2, "discriminator": DENSE16}
    cfg["train"] = {"method": "adversarial", "loss": loss, "epochs": 1}
    with pytest.raises(ConfigError, match=rf"train.loss: FactorVAE's .* expected non_saturating \(got {loss}\)") as e:
        aelab.train(cfg, out=tmp_path / "run")
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()   # refused before anything is written


# ------------------------------------------------------------------ VAE-GAN


def test_the_vaegan_feature_distance_is_half_the_squared_distance_of_the_chosen_layer():
    """Eq. 8-9: a Gaussian in Dis_l's features, identity covariance: 1/2 ||Dis_l(x~) - Dis_l(x)||^2."""
    spec = model_spec("vaegan", encoder=[16], latent_dim=3, feature_layer=0,
                      discriminator=[{"type": "dense", "units": 5}, {"type": "dense", "units": 4}])
    model = build_model(spec, (1, 8, 8))
    x, y = batch(3), torch.rand(3, 1, 8, 8)
    lin = next(m for m in model.discriminator[0][0].modules() if isinstance(m, torch.nn.Linear))
    first = lambda t: F.leaky_relu(t.flatten(1) @ lin.weight.T + lin.bias, SLOPE)  # noqa: E731
    expected = 0.5 * ((first(y) - first(x)) ** 2).sum(1).mean()
    from aelab.models.families.vaegan.game import feature_distance
    torch.testing.assert_close(feature_distance(model, y, x), expected)
    assert model.features(x).shape == (3, 5)
    assert build_model(model_spec("vaegan", encoder=[16], latent_dim=3, discriminator=[
        {"type": "dense", "units": 5}, {"type": "dense", "units": 4}]), (1, 8, 8)).features(x).shape == (3, 4)


def test_the_vaegan_sends_each_player_its_own_gradient():
    """Algorithm 1: the encoder descends L_prior + L_llike, the decoder gamma L_llike - L_GAN
    (non-saturating), the discriminator nothing in this step."""
    gamma = 0.3
    spec, model = built("vaegan", gamma=gamma)
    model.train()
    game, x = FeatureGame(AdversarialTrain(), gamma), batch()
    torch.manual_seed(9)
    loss, parts = game.generator_backward(model, x, ())
    enc, dec = game.encoder_parameters(model), list(model.decoder.parameters())
    got_enc, got_dec = grads(enc), grads(dec)
    assert all(p.grad is None for p in model.discriminator.parameters())

    def terms():
        torch.manual_seed(9)
        mu, logvar = model.encode(x)
        recon = model.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
        prior = model.decode(torch.randn(len(x), 3))
        kl = kld(mu, logvar).mean()
        llike = 0.5 * ((model.features(recon) - model.features(x)) ** 2).sum(1).mean()
        gan = F.softplus(-model.critic(recon)).mean() + F.softplus(-model.critic(prior)).mean()
        return kl, llike, gan

    kl, llike, gan = terms()
    assert_grads(got_enc, torch.autograd.grad(kl + llike, enc))
    kl, llike, gan = terms()
    assert_grads(got_dec, torch.autograd.grad(gamma * llike + gan, dec))
    torch.testing.assert_close(loss, (kl + llike + gan).detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(parts["feature_recon"], llike.detach())


def test_the_vaegan_discriminator_tells_real_images_from_reconstructions_and_prior_samples():
    """Eq. 7: L_GAN = log Dis(x) + log(1 - Dis(Dec(Enc(x)))) + log(1 - Dis(Dec(z_p))); D maximizes it."""
    spec, model = built("vaegan")
    model.train()
    game, x = FeatureGame(AdversarialTrain(), 1.0), batch()
    torch.manual_seed(2)
    loss, _, _ = game.discriminator_backward(model, x, ())
    torch.manual_seed(2)
    with torch.no_grad():
        recon = model.decode(model.reparameterize(*model.encode(x)))
        prior = model.decode(torch.randn(len(x), 3))
        l_gan = (F.logsigmoid(model.critic(x)).mean() + F.logsigmoid(-model.critic(recon)).mean()
                 + F.logsigmoid(-model.critic(prior)).mean())
    torch.testing.assert_close(loss, -l_gan)


# ------------------------------------------------------------------ bad settings


@pytest.mark.parametrize("kind, fields, match", [
    ("vaegan", {"feature_layer": 2}, r"model.feature_layer: expected an index into the 1 discriminator layers, -1 to 0 \(got 2\)"),
    ("vaegan", {"feature_layer": -2}, r"-1 to 0 \(got -2\)"),
    ("vaegan", {"discriminator": []}, r"model.discriminator: the feature reconstruction needs at least one discriminator layer"),
    ("vaegan", {"gamma": -1}, r"model.gamma"),
    ("aae", {"adversarial_weight": -0.5}, r"model.adversarial_weight"),
    ("aae", {"reconstruction": "huber"}, r"model.reconstruction"),
    ("factorvae", {"gamma": float("nan")}, r"model.gamma"),
])
def test_bad_values_are_one_line(kind, fields, match):
    msg = one_line_config_error({"kind": kind, "encoder": [16], "latent_dim": 2, "discriminator": DENSE16, **fields})
    assert re.search(match, msg), msg


def test_a_convolution_on_the_codes_is_refused_naming_the_layer():
    spec = model_spec("aae", encoder=[16], latent_dim=3, discriminator=[{"type": "conv2d", "filters": 4}])
    with pytest.raises(ModelSpecError, match=r"model.discriminator\[0\] \(conv2d\)"):
        build_model(spec, (1, 8, 8))


@pytest.mark.parametrize("field", ["betas", "betas_d"])
def test_adam_betas_outside_0_1_are_one_line(field):
    cfg = copy.deepcopy(TINY)
    cfg["model"] = {"kind": "gan", "discriminator": [16], "latent_dim": 2}
    cfg["train"] = {"method": "adversarial", field: [0.5, 1.0]}
    with pytest.raises(ConfigError, match=rf"train.{field}\[1\]: Input should be less than 1"):
        load_config(cfg)


def test_gradient_optimizer_args_that_torch_refuses_are_one_line(tmp_path):
    cfg = copy.deepcopy(TINY)
    cfg["train"]["optimizer_args"] = {"betas": [1.5, 0.9]}
    with pytest.raises(ConfigError, match=r"train.optimizer_args: adam refuses them: Invalid beta parameter") as e:
        aelab.train(cfg, out=tmp_path / "run")
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ end to end


def adversarial(kind: str, **model) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["model"] = {"kind": kind, "encoder": [32], "latent_dim": 4, "discriminator": [{"type": "dense", "units": 32}],
                    **model}
    cfg["train"] = {"method": "adversarial", "seed": 0, "epochs": 4, "batch_size": 32, "lr_g": 1e-3, "lr_d": 1e-3,
                    "collapse": 0}
    return cfg


@pytest.mark.parametrize("kind, own, parts", [("aae", ["mmd"], ["recon", "adversarial"]),
                                              ("factorvae", ["tc", "elbo"], ["recon", "kl", "tc"]),
                                              ("vaegan", ["kl", "feature_recon"], ["kl", "feature_recon", "adversarial"])])
def test_each_family_trains_writes_its_metrics_and_parts_and_samples(kind, own, parts, tmp_path):
    cfg = adversarial(kind)
    cfg["eval"] = {**cfg["eval"], "figures": True}
    run = aelab.train(cfg, out=tmp_path / "run")
    assert run.status == "completed"
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert all(k in metrics for k in own + ["recon_mse", "knn_acc", "diversity", "nn_distance"])
    assert all(k in run.history[-1] for k in parts + ["d_loss", "g_loss"])
    assert (run.path / "figures" / "loss_parts.png").exists() and (run.path / "figures" / "samples.png").exists()
    out = CliRunner().invoke(app, ["sample", str(run.path), "--sampler", "prior", "--n", "4"])
    assert out.exit_code == 0, out.output
    assert (run.path / "samples-prior" / "samples.npz").exists()


def test_the_aae_pulls_its_codes_towards_the_prior(tmp_path):
    """Against the same network with the adversary switched off (weight 0), the codes' MMD to N(0, I) falls."""
    def mmd(weight: float) -> float:
        cfg = adversarial("aae", adversarial_weight=weight)
        cfg["train"]["epochs"] = 10
        return aelab.train(cfg, out=tmp_path / str(weight)).metrics["mmd"]
    off, on = mmd(0.0), mmd(1.0)
    assert on < 0.2 * off, (on, off)   # measured: 0.22 against 3.1
