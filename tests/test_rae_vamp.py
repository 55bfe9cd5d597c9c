"""The regularized autoencoder (Ghosh et al. 2020, eq. 11, RAE-L2 and RAE-GP,
with its ex-post GMM density) and the VAE with the VampPrior (Tomczak &
Welling 2018, eq. 9) against oracles: both losses written out by hand, the
decoder's Jacobian norm against a linear decoder's ||W||_F^2 and central
finite differences, the mixture density against a numpy logsumexp, the
single-sample KL against its closed form in expectation; then the samplers
(the paper's ex-post GMM, the VampPrior drawn by ``--sampler prior`` exactly
as ``model.sample``), the refused settings, and each family trained end to
end and sampled through ``aelab sample``."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture
from typer.testing import CliRunner

from aelab.cli import app
from aelab.models import build_model
from aelab.models.families.rae.family import rae_objective
from aelab.models.families.rae.penalty import decoder_jacobian_norm_sq, decoder_l2
from aelab.models.families.vamp.family import VampVAE, vamp_elbo_metrics, vamp_objective
from aelab.models.families.vamp.prior import log_normal_diag, single_sample_kl, vamp_log_prior
from aelab.models.family import family
from aelab.runs import load_model, load_run
from aelab.samplers import sampler
from aelab.samplers.draw import training_codes
from aelab.samplers.expost.config import ExPostSpec
from aelab.spec import model_spec
from aelab.training.objectives import summed_loss
from conftest import one_line_config_error, one_line_error, train_tiny as train

runner = CliRunner()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_model(kind: str, **fields):
    torch.manual_seed(0)
    return build_model(model_spec(kind, **{"encoder": [8], "latent_dim": 3, **fields}), (1, 4, 4))


def batch(n: int = 16) -> torch.Tensor:
    return 0.1 + 0.8 * torch.rand(n, 1, 4, 4, generator=gen(7))


def cli(*args):
    return runner.invoke(app, ["sample", *map(str, args)])


# ------------------------------------------------------------------ RAE: eq. 11


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_the_rae_l2_loss_is_recon_plus_beta_half_code_norm_plus_lambda_squared_decoder_parameters(loss):
    model, x = tiny_model("rae"), batch()
    beta, lam = 0.3, 0.02
    value, parts = rae_objective(loss, beta, lam, "l2")(model, x, None, 0)
    with torch.no_grad():
        z = model.encode(x).double().numpy()
        x_hat = model.decode(model.encode(x))
    recon = float(summed_loss(loss)(x_hat, x))
    code = float(np.mean(0.5 * (z ** 2).sum(1)))
    squares = sum(float((p.detach().double().numpy() ** 2).sum()) for p in model.decoder.parameters())
    encoder_squares = sum(float((p.detach().double().numpy() ** 2).sum()) for p in model.body.parameters())
    assert squares > 0 and encoder_squares > 0                            # only the decoder's count
    assert float(parts["recon"]) == pytest.approx(recon, rel=1e-6)
    assert float(parts["code"]) == pytest.approx(code, rel=1e-5)
    assert float(parts["reg"]) == pytest.approx(squares, rel=1e-5)
    assert float(value.detach()) == pytest.approx(recon + beta * code + lam * squares, rel=1e-5)


def test_the_l2_term_is_weight_decay_on_the_decoder_only():
    """d(lambda ||theta_D||^2)/d theta = 2 lambda theta on the decoder, nothing on the encoder."""
    model, x = tiny_model("rae"), batch()
    rae_objective("mse", 0.0, 1.0, "l2")(model, x, None, 0)[0].backward()
    with_reg = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    rae_objective("mse", 0.0, 0.0, "l2")(model, x, None, 0)[0].backward()
    for name, p in model.named_parameters():
        extra = with_reg[name] - p.grad
        expected = 2 * p.detach() if name.startswith("decoder.") else torch.zeros_like(p)
        torch.testing.assert_close(extra, expected, rtol=1e-5, atol=1e-6)


def test_the_gradient_penalty_of_a_linear_decoder_is_its_weights_squared_frobenius_norm():
    """D(z) = W z + b: J = W at every code, so ||J||_F^2 = sum W^2, and the
    penalty's gradient in W is 2 W (it is differentiable in the weights)."""
    torch.manual_seed(1)
    linear = torch.nn.Linear(3, 16)
    decode = lambda z: linear(z).view(-1, 1, 4, 4)  # noqa: E731
    z = torch.randn(5, 3, generator=gen(2))
    norm_sq, x_hat = decoder_jacobian_norm_sq(decode, z, create_graph=True)
    assert torch.allclose(norm_sq, linear.weight.pow(2).sum().expand(5), rtol=1e-6)
    torch.testing.assert_close(x_hat, decode(z))
    norm_sq.mean().backward()
    torch.testing.assert_close(linear.weight.grad, 2 * linear.weight.detach(), rtol=1e-5, atol=1e-7)


def finite_difference_norm_sq(decode, z: torch.Tensor, h: float = 1e-5) -> np.ndarray:
    """sum_j ||(D(z + h e_j) - D(z - h e_j)) / 2h||^2 per code, in float64 (no autograd)."""
    out = np.zeros(len(z))
    with torch.no_grad():
        for j in range(z.shape[1]):
            e = torch.zeros_like(z)
            e[:, j] = h
            col = (decode(z + e) - decode(z - e)).flatten(1) / (2 * h)
            out += col.pow(2).sum(1).numpy()
    return out


def test_the_gradient_penalty_of_a_nonlinear_decoder_matches_finite_differences():
    model = tiny_model("rae", encoder=[8, 6], activation="tanh").double()
    z = torch.randn(7, 3, generator=gen(4), dtype=torch.float64)
    norm_sq, _ = decoder_jacobian_norm_sq(model.decode, z, create_graph=False)
    np.testing.assert_allclose(norm_sq.numpy(), finite_difference_norm_sq(model.decode, z), rtol=1e-6)


def test_the_rae_gp_loss_adds_lambda_times_the_mean_jacobian_norm_at_the_codes():
    model, x = tiny_model("rae", encoder=[8], activation="tanh"), batch()
    value, parts = rae_objective("mse", 0.1, 0.5, "gp")(model, x, None, 0)
    model64 = model.double()
    with torch.no_grad():
        z = model64.encode(x.double())
        recon = float(summed_loss("mse")(model64.decode(z), x.double()))
    gp = float(finite_difference_norm_sq(model64.decode, z).mean())
    code = float(0.5 * z.pow(2).sum(1).mean())
    assert float(parts["reg"]) == pytest.approx(gp, rel=1e-4)
    assert float(value.detach()) == pytest.approx(recon + 0.1 * code + 0.5 * gp, rel=1e-4)


def test_the_gp_objective_trains_the_encoder_through_the_code():
    model, x = tiny_model("rae", activation="tanh"), batch()
    rae_objective("mse", 0.0, 1.0, "gp")(model, x, None, 0)[0].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# ------------------------------------------------------------------ VAMP: eq. 9


def numpy_log_normal(z, mu, logvar):
    return -0.5 * (np.log(2 * np.pi) + logvar + (z - mu) ** 2 / np.exp(logvar)).sum(-1)


def numpy_vamp_log_prior(z: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """log (1/K sum_k N(z; mu_k, diag exp(logvar_k))) by a max-shifted logsumexp."""
    a = np.stack([numpy_log_normal(z, mu[k], logvar[k]) for k in range(len(mu))], axis=1)  # (B, K)
    top = a.max(1, keepdims=True)
    return (top[:, 0] + np.log(np.exp(a - top).sum(1))) - np.log(len(mu))


def test_the_vampprior_density_is_the_mixture_of_k_gaussians_written_out():
    z = torch.randn(9, 3, generator=gen(1), dtype=torch.float64) * 2
    mu = torch.randn(5, 3, generator=gen(2), dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=gen(3), dtype=torch.float64) * 0.5
    ours = vamp_log_prior(z, mu, logvar).numpy()
    np.testing.assert_allclose(ours, numpy_vamp_log_prior(z.numpy(), mu.numpy(), logvar.numpy()), rtol=1e-12)
    far = vamp_log_prior(z + 1e3, mu, logvar)                              # stable where exp underflows
    assert torch.isfinite(far).all()
    density = sum(math.prod(math.exp(-(float(z[0, j]) - float(mu[k, j])) ** 2 / (2 * math.exp(float(logvar[k, j]))))
                            / math.sqrt(2 * math.pi * math.exp(float(logvar[k, j]))) for j in range(3))
                  for k in range(5)) / 5
    assert float(ours[0]) == pytest.approx(math.log(density), rel=1e-10)


def test_one_component_or_equal_pseudo_inputs_collapse_the_mixture_to_one_gaussian():
    z = torch.randn(6, 3, generator=gen(5), dtype=torch.float64)
    mu, logvar = torch.randn(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64)
    torch.testing.assert_close(vamp_log_prior(z, mu, logvar), log_normal_diag(z, mu[0], logvar[0]))
    torch.testing.assert_close(vamp_log_prior(z, mu.repeat(4, 1), logvar.repeat(4, 1)),
                               log_normal_diag(z, mu[0], logvar[0]))
    model = tiny_model("vamp", components=4)
    with torch.no_grad():
        model.pseudo.copy_(model.pseudo[:1].repeat(4, 1))                 # four copies of one pseudo-input
        pm, plv = model.prior_params()
        u = model.pseudo_inputs()[:1]
        mu1, logvar1 = model.encode(u)
    torch.testing.assert_close(vamp_log_prior(z.float(), pm, plv), log_normal_diag(z.float(), mu1[0], logvar1[0]))


def test_the_single_sample_kl_is_log_q_minus_log_p_and_unbiased_for_the_closed_form():
    mu, logvar = torch.tensor([[0.3, -0.5]], dtype=torch.float64), torch.tensor([[-0.4, 0.2]], dtype=torch.float64)
    pm, plv = torch.tensor([[0.1, 0.2]], dtype=torch.float64), torch.tensor([[0.3, -0.1]], dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 2, generator=gen(8), dtype=torch.float64)
    kl = single_sample_kl(z, mu, logvar, pm, plv)
    by_hand = numpy_log_normal(z.numpy(), mu.numpy(), logvar.numpy()) - numpy_vamp_log_prior(z.numpy(), pm.numpy(),
                                                                                          plv.numpy())
    np.testing.assert_allclose(kl.numpy(), by_hand, rtol=1e-10, atol=1e-12)
    v, pv = logvar.exp(), plv.exp()                                        # KL of two diagonal Gaussians
    closed = float(0.5 * (plv - logvar + (v + (mu - pm) ** 2) / pv - 1).sum())
    assert float(kl.mean()) == pytest.approx(closed, abs=4 * float(kl.std()) / math.sqrt(len(kl)))
    assert (kl < 0).any()                                                 # one draw can be negative


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_the_vamp_loss_is_the_negative_elbo_with_the_kl_at_the_draw(loss):
    model, x = tiny_model("vamp", components=5), batch()
    torch.manual_seed(3)
    value, parts = vamp_objective(loss, 0.7, 0)(model, x, None, 0)
    torch.manual_seed(3)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)            # the forward pass's draw
        pm, plv = model.encode(model.pseudo_inputs())
        recon = float(summed_loss(loss)(model.decode(z), x))
    kl = float(np.mean(numpy_log_normal(z.double().numpy(), mu.double().numpy(), logvar.double().numpy())
                       - numpy_vamp_log_prior(z.double().numpy(), pm.double().numpy(), plv.double().numpy())))
    assert float(parts["recon"]) == pytest.approx(recon, rel=1e-6)
    assert float(parts["kl"]) == pytest.approx(kl, rel=1e-4, abs=1e-5)
    assert float(value.detach()) == pytest.approx(recon + 0.7 * kl, rel=1e-5)


def test_the_pseudo_inputs_are_a_linear_layer_of_the_identity_through_a_hardtanh_and_learn():
    model = tiny_model("vamp", components=7)
    assert isinstance(model, VampVAE) and model.components == 7
    linear = torch.nn.Linear(7, 16, bias=False)
    with torch.no_grad():
        linear.weight.copy_(model.pseudo.T)
        model.pseudo[0, :3] = torch.tensor([-0.5, 0.5, 1.5])
        linear.weight[:3, 0] = torch.tensor([-0.5, 0.5, 1.5])
    u = model.pseudo_inputs()
    torch.testing.assert_close(u, torch.nn.functional.hardtanh(linear(torch.eye(7)), 0, 1).view(7, 1, 4, 4))
    assert u[0, 0, 0, :3].tolist() == [0.0, 0.5, 1.0]
    fresh = tiny_model("vamp", components=7)
    assert 0.0 < float(fresh.pseudo.detach().min()) and float(fresh.pseudo.detach().max()) < 1.0   # inside the hardtanh: all learn
    free = tiny_model("vamp", components=7, pseudo_activation="linear")
    assert torch.equal(free.pseudo_inputs(), free.pseudo.view(7, 1, 4, 4))
    torch.manual_seed(0)
    vamp_objective("mse", 1.0, 0)(fresh, batch(), None, 0)[0].backward()
    assert fresh.pseudo.grad is not None and (fresh.pseudo.grad != 0).float().mean() > 0.5  # the prior is learned


def test_the_vamp_shares_the_vae_weights_for_one_seed():
    vae, vamp = tiny_model("vae"), tiny_model("vamp", components=3)
    shared = vae.state_dict()
    own = vamp.state_dict()
    assert set(own) - set(shared) == {"pseudo"}
    assert all(torch.equal(shared[k], own[k]) for k in shared)


def test_sample_picks_a_pseudo_input_uniformly_and_draws_its_posterior():
    model = tiny_model("vamp", components=4).eval()
    with torch.no_grad():
        codes = model.prior_codes(6, generator=gen(2))
        g = gen(2)
        k = torch.randint(4, (6,), generator=g)
        eps = torch.randn(6, 3, generator=g)
        pm, plv = model.prior_params()
        torch.testing.assert_close(codes, pm[k] + torch.exp(0.5 * plv[k]) * eps)
        assert torch.equal(model.sample(6, generator=gen(2)), model.decode(codes))
        many = model.prior_codes(40_000, generator=gen(3))
    mixture_mean = pm.mean(0)                                              # equal weights 1/K
    assert torch.allclose(many.mean(0), mixture_mean, atol=0.03)


def test_the_vamp_elbo_metric_is_the_elbo_with_the_vampprior_by_hand():
    model, x = tiny_model("vamp", components=5).eval(), batch(10).numpy()
    got = vamp_elbo_metrics(model, x, "bce", "cpu", seed=4, batch=4)       # several batches, one generator
    g, recon, kl = gen(4), [], []
    with torch.no_grad():
        pm, plv = model.prior_params()
        for i in range(0, 10, 4):
            xb = torch.as_tensor(x[i:i + 4])
            mu, logvar = model.encode(xb)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
            p = model.decode(z).clamp(1e-7, 1 - 1e-7)
            recon += list((-(xb * p.log() + (1 - xb) * (1 - p).log())).flatten(1).sum(1).numpy())
            kl += list(numpy_log_normal(z.double().numpy(), mu.double().numpy(), logvar.double().numpy())
                       - numpy_vamp_log_prior(z.double().numpy(), pm.double().numpy(), plv.double().numpy()))
    assert got["recon_term"] == pytest.approx(np.mean(recon), rel=1e-5)
    assert got["kl"] == pytest.approx(np.mean(kl), rel=1e-4, abs=1e-5)
    assert got["elbo"] == pytest.approx(-(np.mean(recon) + np.mean(kl)), rel=1e-5)


# ------------------------------------------------------------------ the specs


@pytest.mark.parametrize("model, expected", [
    ({"kind": "rae", "regularization": "sn"}, r"model\.regularization: Input should be 'l2' or 'gp'"),
    ({"kind": "rae", "embedding_weight": -1}, r"model\.embedding_weight: Input should be greater than or equal to 0"),
    ({"kind": "rae", "reg_weight": -0.1}, r"model\.reg_weight: Input should be greater than or equal to 0"),
    ({"kind": "rae", "reg_weight": math.inf}, r"model\.reg_weight: expected a finite number, got inf"),
    ({"kind": "rae", "lambda": 1}, r"model\.lambda: unknown key"),
    ({"kind": "vamp", "components": 0}, r"model\.components: Input should be greater than or equal to 1"),
    ({"kind": "vamp", "components": 2.5}, r"model\.components: "),
    ({"kind": "vamp", "pseudo_activation": "sigmoid"}, r"model\.pseudo_activation: Input should be 'hardtanh' or 'linear'"),
    ({"kind": "vamp", "beta": -1}, r"model\.beta: Input should be greater than or equal to 0"),
])
def test_a_bad_setting_is_one_line_naming_the_field(model, expected):
    assert re.search(expected, one_line_config_error({"encoder": [16], **model}))


def test_the_defaults_are_the_papers():
    rae, vamp = model_spec("rae"), model_spec("vamp")
    assert (rae.regularization, rae.embedding_weight, rae.reg_weight) == ("l2", 1e-4, 1e-7)
    assert (vamp.components, vamp.pseudo_activation, vamp.beta) == (500, "hardtanh", 1.0)
    assert ExPostSpec().components == 10


def test_the_rae_is_not_generative_and_the_vamp_is():
    rae, vamp = family("rae"), family("vamp")
    assert set(rae.capabilities) == {"embed", "decode"} and rae.default_sampler == "expost"
    assert set(vamp.capabilities) == {"embed", "decode", "generative"}
    assert rae.fused_objective() == "regularized" and vamp.fused_objective() is None  # RAE-L2 fuses
    for f in (rae, vamp):
        assert f.methods == ("gradient",)


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rae-vamp")
    return {"rae": train(root, "rae", {"kind": "rae"}, epochs=3),
            "rae-gp": train(root, "rae-gp", {"kind": "rae", "regularization": "gp", "reg_weight": 0.01}, epochs=3),
            "vamp": train(root, "vamp", {"kind": "vamp", "components": 10}, epochs=3)}


@pytest.mark.parametrize("name, parts, own", [
    ("rae", ["recon", "code", "reg"], ["code_norm", "decoder_l2", "gradient_penalty", "diversity", "nn_distance"]),
    ("rae-gp", ["recon", "code", "reg"], ["code_norm", "decoder_l2", "gradient_penalty", "diversity"]),
    ("vamp", ["recon", "kl"], ["elbo", "recon_term", "kl", "diversity", "nn_distance"]),
])
def test_each_family_trains_end_to_end_and_writes_its_metrics(runs, name, parts, own):
    run = runs[name]
    written = json.loads((run.path / "metrics.json").read_text())
    assert run.status == "completed" and written["status"] == "completed"
    assert all(math.isfinite(written[k]) for k in ["recon_mse", "knn_acc", *own]), written
    assert all(f"train_{p}" in run.history[-1] and f"val_{p}" in run.history[-1] for p in parts)
    loaded = load_model(run.path)
    assert loaded.kind == run.config.model.kind and loaded.latent_dim == 4


def test_the_rae_metrics_are_its_regularizers_and_expost_samples(runs):
    run = runs["rae"]
    model = load_model(run.path)
    with torch.no_grad():
        assert run.metrics["decoder_l2"] == pytest.approx(float(decoder_l2(model.decoder.parameters())), rel=1e-6)
    assert run.metrics["diversity"] > 0 and run.metrics["real_diversity"] > 0


def test_the_vamp_metrics_are_the_vampprior_elbo_of_the_test_split(runs):
    from aelab.data import load_dataset
    run = runs["vamp"]
    data = load_dataset(run.config.data)
    again = vamp_elbo_metrics(load_model(run.path), data.x_test, run.config.train.loss, "cpu", run.config.eval.seed)
    assert run.metrics["elbo"] == pytest.approx(again["elbo"], rel=1e-6)
    assert run.metrics["elbo"] < 0 < run.metrics["recon_term"]


def test_the_code_penalty_shrinks_the_codes(tmp_path):
    free = train(tmp_path, "beta0", {"kind": "rae", "embedding_weight": 0.0}, epochs=4)
    small = train(tmp_path, "beta", {"kind": "rae", "embedding_weight": 5.0}, epochs=4)
    assert small.metrics["code_norm"] < 0.5 * free.metrics["code_norm"]


def test_the_expost_sampler_is_the_papers_gmm_of_the_training_codes(runs):
    run = runs["rae"]
    model = load_model(run.path)
    codes = training_codes(load_run(run.path), model)
    density = sampler("expost").fit(ExPostSpec(), model, codes, seed=3)
    ref = GaussianMixture(n_components=10, covariance_type="full", max_iter=2000, tol=1e-3, random_state=3).fit(
        codes.astype(np.float64))
    np.testing.assert_allclose(density.distribution.weights.numpy(), ref.weights_, rtol=1e-5)
    np.testing.assert_allclose(density.distribution.means.numpy(), ref.means_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(density.distribution.covariances.numpy(), ref.covariances_, rtol=1e-4, atol=1e-6)
    assert density.facts()["components"] == 10 and "Ghosh" in density.facts()["distribution"]


def test_aelab_sample_of_an_rae_draws_its_expost_density_by_default(runs, tmp_path):
    run = runs["rae"]
    r = cli(run.path, "--n", 8, "--seed", 2)
    assert r.exit_code == 0, r.output
    info = json.loads((run.path / "samples-expost" / "sampler.json").read_text())
    assert info["sampler"] == "expost" and info["options"] == {"components": 10}
    r = cli(run.path, "--sampler", "expost", "--components", 3, "--n", 5, "--out", tmp_path / "three")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "three" / "sampler.json").read_text())["fitted"]["components"] == 3


def test_an_rae_refuses_the_prior_in_one_line_naming_its_samplers(runs, tmp_path):
    line = one_line_error(cli(runs["rae"].path, "--sampler", "prior", "--out", tmp_path / "o"))
    assert "--sampler prior: " in line and "is a 'rae' run, which has no prior to draw from" in line
    assert line.endswith("use --sampler expost or gaussian or gmm")
    assert not (tmp_path / "o").exists()


def test_aelab_sample_prior_of_a_vamp_is_model_sample_bit_for_bit(runs, tmp_path):
    run = runs["vamp"]
    r = cli(run.path, "--n", 9, "--seed", 5, "--out", tmp_path / "p")     # the default: its prior
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "p" / "samples.npz") as f:
        images, codes = f["images"], f["codes"]
    info = json.loads((tmp_path / "p" / "sampler.json").read_text())
    assert info["sampler"] == "prior" and "VampPrior" in info["fitted"]["distribution"]
    model = load_model(run.path).eval()
    with torch.no_grad():
        np.testing.assert_array_equal(images, model.sample(9, generator=gen(5)).numpy())
        np.testing.assert_array_equal(codes, model.prior_codes(9, generator=gen(5)).numpy())
        standard = torch.randn(9, 4, generator=gen(5)).numpy()
    assert not np.allclose(codes, standard)                               # not N(0, I)
