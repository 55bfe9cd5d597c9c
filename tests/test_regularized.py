"""The regularized autoencoders -- denoising (Vincent et al. 2008), sparse
(Ng's CS294A notes) and contractive (Rifai et al. 2011) -- against oracles:
the noise processes' statistics, the losses computed by hand, the sparsity
penalties in numpy, the contractive penalty against
``torch.autograd.functional.jacobian`` and the paper's sigmoid closed form;
then each family trained end to end through ``aelab.train``."""
from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

import aelab
from aelab.models import build_model
from aelab.models.families.cae.family import contractive_objective
from aelab.models.families.cae.jacobian import jacobian_norm_sq
from aelab.models.families.dae.corruption import corrupt
from aelab.models.families.dae.family import DenoisingAutoencoder, denoising_objective
from aelab.models.families.sae.family import code_metrics, sparse_objective
from aelab.models.families.sae.penalty import kl_sparsity, l1_sparsity
from aelab.spec import load_config, model_spec
from aelab.training.objectives import ae_objective
from conftest import TINY, one_line_config_error, train_tiny as train


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 400, lo: float = 0.2, hi: float = 0.8) -> torch.Tensor:
    """(n, 1, 8, 8) values in (lo, hi): never 0, never the extremes."""
    return lo + (hi - lo) * torch.rand(n, 1, 8, 8, generator=gen(1))


# ------------------------------------------------------------------ denoising


@pytest.mark.parametrize("level", [0.1, 0.25, 0.5])
def test_masking_zeroes_the_fraction_asked_in_every_example(level):
    x = images()
    x_tilde = corrupt(x, "masking", level, gen())
    k = round(level * 64)                                        # a fixed number nu*d per example
    assert ((x_tilde == 0).flatten(1).sum(1) == k).all()
    kept = x_tilde != 0
    assert torch.equal(x_tilde[kept], x[kept])                   # the others untouched
    per_pixel = (x_tilde == 0).flatten(1).float().mean(0)        # chosen uniformly: no pixel favoured
    assert float(per_pixel.mean()) == pytest.approx(k / 64) and float(per_pixel.std()) < 0.1


def test_gaussian_noise_has_the_std_asked_and_no_bias():
    x = images(2000)
    delta = corrupt(x, "gaussian", 0.3, gen()) - x
    assert abs(float(delta.std()) - 0.3) < 0.005 and abs(float(delta.mean())) < 0.005


def test_salt_and_pepper_sets_the_fraction_to_the_data_min_or_max_half_and_half():
    x = images(2000)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0                      # the batch's range: [0, 1]
    x_tilde = corrupt(x, "salt_pepper", 0.2, gen())
    changed = x_tilde != x
    assert (changed.flatten(1).sum(1) <= round(0.2 * 64)).all()  # <=: a pixel already at 0 or 1 may be drawn
    assert abs(float(changed.float().mean()) - 13 / 64) < 1e-3
    values = x_tilde[changed]
    assert set(values.unique().tolist()) == {0.0, 1.0}
    assert abs(float((values == 1).float().mean()) - 0.5) < 0.02   # a fair coin
    explicit = corrupt(x, "salt_pepper", 0.2, gen(), low=-1.0, high=2.0)
    assert set(explicit[explicit != x].unique().tolist()) <= {-1.0, 2.0}


def test_the_global_rng_draws_the_noise_unless_a_generator_is_given():
    x = images(20)
    torch.manual_seed(5)
    a = corrupt(x, "masking", 0.3)
    torch.manual_seed(5)
    b = corrupt(x, "masking", 0.3)
    assert torch.equal(a, b) and not torch.equal(a, corrupt(x, "masking", 0.3))
    assert torch.equal(corrupt(x, "gaussian", 0.1, gen(3)), corrupt(x, "gaussian", 0.1, gen(3)))


def tiny_autoencoder() -> DenoisingAutoencoder:
    """4 inputs -> 2 linear code units -> 4 sigmoid outputs, fixed weights."""
    torch.manual_seed(0)
    model = DenoisingAutoencoder(nn.Flatten(), nn.Linear(4, 2), nn.Sequential(nn.Linear(2, 4), nn.Sigmoid()),
                                 "masking", 0.5)
    return model.double()


def by_hand(model, x_in: np.ndarray, x: np.ndarray) -> float:
    """mean((sigmoid(W2 (W1 x_in + b1) + b2) - x)^2) in numpy."""
    (w1, b1), (w2, b2) = [(m.weight.detach().numpy(), m.bias.detach().numpy())
                          for m in (model.to_latent, model.decoder[0])]
    x_hat = 1 / (1 + np.exp(-((x_in @ w1.T + b1) @ w2.T + b2)))
    return float(np.mean((x_hat - x) ** 2))


def test_the_denoising_loss_compares_the_reconstruction_of_the_corrupted_input_with_the_clean_one():
    model = tiny_autoencoder().train()
    x = torch.tensor([[0.2, 0.4, 0.6, 0.8], [0.9, 0.7, 0.5, 0.3], [0.1, 0.1, 0.9, 0.9]], dtype=torch.float64)
    objective = denoising_objective("mse", "masking", 0.5)
    torch.manual_seed(11)
    loss, parts = objective(model, x, None, 0)
    loss = loss.detach()
    torch.manual_seed(11)
    x_tilde = corrupt(x, "masking", 0.5).numpy()                 # the same draw
    assert ((x_tilde == 0).sum(1) == 2).all()
    assert float(loss) == pytest.approx(by_hand(model, x_tilde, x.numpy()), rel=1e-12)
    assert float(loss) != pytest.approx(by_hand(model, x_tilde, x_tilde), rel=1e-3)  # not against x~
    assert float(parts["recon"]) == float(loss)


def test_the_noise_is_only_applied_in_training_mode():
    model = tiny_autoencoder()
    x = torch.rand(16, 4, generator=gen(), dtype=torch.float64)
    objective = denoising_objective("mse", "masking", 0.5)
    model.eval()
    clean = float(objective(model, x, None, 0)[0].detach())
    assert clean == pytest.approx(by_hand(model, x.numpy(), x.numpy()), rel=1e-12)
    assert clean == float(ae_objective("mse")(model, x, None, 0)[0].detach())
    model.train()
    torch.manual_seed(2)
    noisy = float(objective(model, x, None, 0)[0].detach())
    torch.manual_seed(2)
    x_tilde = corrupt(x, "masking", 0.5).numpy()
    assert noisy == pytest.approx(by_hand(model, x_tilde, x.numpy()), rel=1e-12) and noisy != clean


@pytest.mark.parametrize("fields, expected", [
    ({"noise_level": -0.1}, r"model\.noise_level: Input should be greater than or equal to 0"),
    ({"noise": "masking", "noise_level": 1.5}, r"model\.noise_level: masking noise corrupts a fraction .* at most 1"),
    ({"noise": "salt_pepper", "noise_level": 2}, r"model\.noise_level: salt_pepper noise .* at most 1"),
    ({"noise_level": math.inf}, r"model\.noise_level: expected a finite number"),
    ({"noise": "blur"}, r"model\.noise: Input should be 'gaussian', 'masking' or 'salt_pepper'"),
])
def test_a_bad_noise_setting_is_one_line_naming_the_field(fields, expected):
    assert re.search(expected, one_line_config_error({"kind": "dae", "encoder": [16], **fields}))


def test_gaussian_noise_may_exceed_one_since_it_is_a_std():
    assert load_config(copy.deepcopy(TINY) | {"model": {"kind": "dae", "noise": "gaussian",
                                                        "noise_level": 1.5}}).model.noise_level == 1.5


# ------------------------------------------------------------------ sparse


def ng_kl(z: np.ndarray, rho: float) -> float:
    """sum_j KL(rho || rho_hat_j), Ng's notes, written out in numpy."""
    rho_hat = z.mean(axis=0)
    return float(np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))))


@pytest.mark.parametrize("rho", [0.01, 0.05, 0.3])
def test_the_kl_penalty_is_ngs_formula(rho):
    z = np.random.default_rng(0).uniform(0.01, 0.99, size=(32, 8))
    assert float(kl_sparsity(torch.tensor(z), rho)) == pytest.approx(ng_kl(z, rho), rel=1e-12)
    at_target = np.full((4, 8), rho)
    assert float(kl_sparsity(torch.tensor(at_target), rho)) == pytest.approx(0.0, abs=1e-12)


def test_the_l1_penalty_is_the_batch_mean_of_the_summed_absolute_codes():
    z = np.random.default_rng(1).normal(size=(10, 6))
    assert float(l1_sparsity(torch.tensor(z))) == pytest.approx(np.abs(z).sum(axis=1).mean(), rel=1e-12)


@pytest.mark.parametrize("sparsity", ["kl", "l1"])
def test_the_sparse_objective_is_the_summed_reconstruction_plus_the_weighted_penalty(sparsity):
    spec = model_spec("sae", encoder=[8], latent_dim=5, sparsity=sparsity)
    model = build_model(spec, (1, 8, 8)).double().train()
    x = torch.rand(12, 1, 8, 8, generator=gen(), dtype=torch.float64)
    loss, parts = sparse_objective("mse", sparsity, 0.7, 0.05)(model, x, None, 0)
    with torch.no_grad():
        out = model(x)
    z = out["z"].numpy()
    recon = float(((out["x_hat"] - x) ** 2).flatten(1).sum(1).mean())
    penalty = ng_kl(z, 0.05) if sparsity == "kl" else float(np.abs(z).sum(1).mean())
    assert float(parts["recon"]) == pytest.approx(recon, rel=1e-12)
    assert float(loss.detach()) == pytest.approx(recon + 0.7 * penalty, rel=1e-12)


def test_the_sparse_spec_picks_its_code_by_penalty_and_refuses_kl_on_codes_outside_0_1():
    assert model_spec("sae").latent_activation == "sigmoid" and model_spec("sae").sparsity_weight == 3.0
    l1 = model_spec("sae", sparsity="l1")
    assert l1.latent_activation == "relu" and l1.sparsity_weight == 0.1
    assert model_spec("sae", latent_activation="softmax").latent_activation == "softmax"
    line = one_line_config_error({"kind": "sae", "latent_activation": "relu"})
    assert "latent_activation: sparsity kl needs code activations in (0, 1), expected sigmoid or softmax" in line
    assert "model.sparsity_target" in one_line_config_error({"kind": "sae", "sparsity_target": 1.0})
    assert "model.sparsity_weight" in one_line_config_error({"kind": "sae", "sparsity_weight": -1})


def test_code_metrics_count_inactive_entries_and_the_mean_activation():
    z = np.array([[0.0, 0.005, 0.5, 1.0], [0.02, -0.001, 0.3, 0.1]])
    assert code_metrics(z) == {"code_sparsity": 3 / 8, "mean_activation": pytest.approx(z.mean())}


# ------------------------------------------------------------------ contractive


def reference_norm_sq(encode, x: torch.Tensor) -> torch.Tensor:
    """||J||_F^2 per example from the full Jacobian of autograd.functional."""
    return torch.stack([torch.autograd.functional.jacobian(lambda v: encode(v[None])[0], xb).pow(2).sum()
                        for xb in x])


def test_the_penalty_is_the_squared_frobenius_norm_of_the_full_jacobian():
    torch.manual_seed(0)
    encode = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3), nn.ELU()).double()
    x = torch.randn(7, 6, dtype=torch.float64)
    norm_sq, z = jacobian_norm_sq(encode, x)
    assert torch.allclose(norm_sq, reference_norm_sq(encode, x), rtol=1e-12, atol=0)
    assert torch.allclose(z, encode(x))


def test_the_penalty_is_exact_for_a_convolutional_encoder_of_the_layer_vocabulary():
    spec = model_spec("cae", encoder=[{"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1},
                                      {"type": "maxpool"}, {"type": "dropout", "rate": 0.3}, 6],
                      activation="gelu", latent_dim=4)
    torch.manual_seed(0)
    model = build_model(spec, (1, 8, 8)).double().eval()   # eval: dropout off, the encoder is one function
    x = torch.rand(5, 1, 8, 8, generator=gen(), dtype=torch.float64)
    assert torch.allclose(jacobian_norm_sq(model.encode, x)[0], reference_norm_sq(model.encode, x), rtol=1e-10)


def closed_form(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Rifai et al. 2011 for h = sigmoid(Wx + b): sum_j (h_j (1 - h_j))^2 sum_i W_ji^2."""
    h = torch.sigmoid(layer(x))
    return ((h * (1 - h)) ** 2 * layer.weight.pow(2).sum(1)).sum(1)


def test_for_one_sigmoid_layer_the_penalty_is_the_papers_closed_form_and_so_is_its_gradient():
    torch.manual_seed(0)
    layer = nn.Linear(6, 4).double()
    encode = nn.Sequential(layer, nn.Sigmoid())
    x = torch.randn(9, 6, dtype=torch.float64)
    norm_sq, _ = jacobian_norm_sq(encode, x)
    expected = closed_form(layer, x)
    assert torch.allclose(norm_sq, expected, rtol=1e-12)
    ours = torch.autograd.grad(norm_sq.mean(), layer.weight)[0]   # create_graph: the penalty trains the weights
    theirs = torch.autograd.grad(expected.mean(), layer.weight)[0]
    assert torch.allclose(ours, theirs, rtol=1e-10)


def test_the_contractive_objective_adds_lambda_times_the_batch_mean_and_also_evaluates_under_no_grad():
    spec = model_spec("cae", encoder=[8], latent_dim=3, activation="tanh")
    torch.manual_seed(0)
    model = build_model(spec, (1, 8, 8)).double().train()
    x = torch.rand(6, 1, 8, 8, generator=gen(), dtype=torch.float64)
    objective = contractive_objective("mse", 0.5)
    loss, parts = objective(model, x, None, 0)
    recon = float(((model(x)["x_hat"].detach() - x) ** 2).flatten(1).sum(1).mean())
    jac = float(reference_norm_sq(model.encode, x).mean())
    assert float(parts["contraction"]) == pytest.approx(jac, rel=1e-10)
    assert float(loss.detach()) == pytest.approx(recon + 0.5 * jac, rel=1e-10) and loss.requires_grad
    with torch.no_grad():  # the validation loss: the trainer evaluates without gradients
        val, _ = objective(model.eval(), x, None, 0)
    assert float(val) == pytest.approx(float(loss.detach()), rel=1e-10) and not val.requires_grad


def test_a_contractive_encoder_with_batchnorm_is_one_line_naming_the_layer():
    line = one_line_config_error({"kind": "cae", "encoder": [16, {"type": "batchnorm"}]})
    assert "model.encoder: layer 1 (batchnorm): expected no batch normalization in a contractive encoder" in line
    assert "model.contraction" in one_line_config_error({"kind": "cae", "contraction": -1})


# ------------------------------------------------------------------ end to end




@pytest.mark.parametrize("model, metrics, parts", [
    ({"kind": "dae", "noise": "gaussian", "noise_level": 0.2}, ["denoise_mse"], ["recon"]),
    ({"kind": "dae", "noise": "salt_pepper", "noise_level": 0.1}, ["denoise_mse"], ["recon"]),
    ({"kind": "sae", "sparsity": "l1"}, ["code_sparsity", "mean_activation"], ["recon", "sparsity"]),
    ({"kind": "sae", "sparsity": "kl"}, ["code_sparsity", "mean_activation"], ["recon", "sparsity"]),
    ({"kind": "cae", "contraction": 0.5}, ["contraction"], ["recon", "contraction"]),
], ids=["dae-gaussian", "dae-salt-pepper", "sae-l1", "sae-kl", "cae"])
def test_each_family_trains_end_to_end_and_writes_its_metrics(tmp_path, model, metrics, parts):
    run = train(tmp_path, "run", model)
    written = json.loads((run.path / "metrics.json").read_text())
    assert run.status == "completed" and written["status"] == "completed"
    assert all(math.isfinite(written[k]) for k in ["recon_mse", "knn_acc", *metrics]), written
    assert all(f"train_{p}" in run.history[-1] and f"val_{p}" in run.history[-1] for p in parts)
    assert aelab.load_run(run.path).config.model.kind == model["kind"]


def test_a_dae_without_noise_is_the_autoencoder_number_for_number(tmp_path):
    ae = train(tmp_path, "ae", {"kind": "ae"})
    dae = train(tmp_path, "dae", {"kind": "dae", "noise": "masking", "noise_level": 0.0})
    assert [r["train_loss"] for r in dae.history] == [r["train_loss"] for r in ae.history]
    assert dae.metrics["recon_mse"] == ae.metrics["recon_mse"] == pytest.approx(dae.metrics["denoise_mse"])


def test_the_penalties_do_what_they_are_for(tmp_path):
    """Weighted up, the KL pulls the mean activation towards rho and the
    contraction shrinks the encoder's Jacobian."""
    loose = train(tmp_path, "sae0", {"kind": "sae", "sparsity_weight": 0.0}, epochs=8)
    sparse = train(tmp_path, "sae", {"kind": "sae", "sparsity_weight": 3.0, "sparsity_target": 0.05}, epochs=8)
    assert abs(sparse.metrics["mean_activation"] - 0.05) < abs(loose.metrics["mean_activation"] - 0.05)
    free = train(tmp_path, "cae0", {"kind": "cae", "contraction": 0.0}, epochs=8)
    tight = train(tmp_path, "cae", {"kind": "cae", "contraction": 1.0}, epochs=8)
    assert tight.metrics["contraction"] < 0.5 * free.metrics["contraction"]


@pytest.mark.parametrize("kind, fuses", [("dae", True), ("sae", True), ("cae", False)])
def test_repeats_fuse_where_the_family_declares_a_fused_objective(tmp_path, kind, fuses):
    """The fused trainer has the denoising and sparse autoencoders'
    objectives; the contractive one declares none, so its seeds train as
    solo runs, under its own loss."""
    from aelab.fused_runs import stack_key
    from aelab.models.family import family
    from aelab.repeats import train_repeats
    cfg = load_config(copy.deepcopy(TINY) | {"model": {"kind": kind, "encoder": [16]}})
    assert (family(kind).fused_objective() is not None) == fuses and (stack_key(cfg) is not None) == fuses
    summary = train_repeats(cfg, 2, tmp_path / "repeats")
    assert summary["trained"] == ("fused" if fuses else "one after another")
    runs = [aelab.load_run(tmp_path / "repeats" / f"seed-{s}") for s in (0, 1)]
    own = family(kind).metric_names[-1]
    assert all(r.status == "completed" and math.isfinite(r.metrics[own]) for r in runs)
