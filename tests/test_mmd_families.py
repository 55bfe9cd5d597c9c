"""The MMD families -- the Wasserstein autoencoder (WAE-MMD, Tolstikhin et al.
2018, Algorithm 2) and the InfoVAE with the MMD divergence (Zhao, Song &
Ermon 2019, eq. 6) -- against oracles: the MMD estimator against a double
loop in numpy, its behaviour on equal and shifted distributions, both
objectives computed by hand with the prior draws fixed by the seed, eq. 6's
weights against the VAE objective's terms, the refused settings; then each
family trained end to end through ``aelab.train`` and sampled through
``aelab sample``."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
from typer.testing import CliRunner

import aelab
from aelab.cli import app
from aelab.models import build_model
from aelab.models.families.infovae.family import infovae_objective
from aelab.models.families.wae.family import WassersteinAutoencoder, code_mmd, wae_objective
from aelab.models.families.wae.mmd import MULTISCALE, mmd, prior_draws
from aelab.models.family import family
from aelab.runs import load_model
from aelab.spec import model_spec
from aelab.training.objectives import summed_loss, vae_objective
from conftest import one_line_config_error, train_tiny as train


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ the estimator


def loop_mmd(q: np.ndarray, p: np.ndarray, kernel: str, sigma: float, scales=(1.0,)) -> float:
    """Algorithm 2 of the WAE paper written out: within-sample pairs l != j, cross pairs all."""
    n, d = q.shape
    base = 2 * d * sigma ** 2

    def k(x, y):
        sq = float(((x - y) ** 2).sum())
        if kernel == "imq":
            return sum(s * base / (s * base + sq) for s in scales)
        return sum(math.exp(-sq / (s * base)) for s in scales)

    qq = sum(k(q[i], q[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    pp = sum(k(p[i], p[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    qp = sum(k(q[i], p[j]) for i in range(n) for j in range(n)) / (n * n)
    return qq + pp - 2 * qp


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("sigma, scales", [(1.0, (1.0,)), (0.7, (1.0,)), (1.0, MULTISCALE), (2.0, MULTISCALE)])
def test_the_estimator_is_the_papers_u_statistic_written_as_a_double_loop(kernel, sigma, scales):
    q = torch.randn(12, 3, generator=gen(1), dtype=torch.float64) * 0.8 + 0.3
    p = torch.randn(12, 3, generator=gen(2), dtype=torch.float64) * sigma
    ours = float(mmd(q, p, kernel, sigma, scales))
    assert ours == pytest.approx(loop_mmd(q.numpy(), p.numpy(), kernel, sigma, scales), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_the_mmd_is_about_zero_between_samples_of_one_distribution_and_positive_for_shifted_ones(kernel):
    a, b = torch.randn(500, 4, generator=gen(3)), torch.randn(500, 4, generator=gen(4))
    same = float(mmd(a, b, kernel))
    shifted = float(mmd(a + 1.0, b, kernel))
    wider = float(mmd(3.0 * a, b, kernel))
    assert abs(same) < 0.01 and shifted > 20 * abs(same) and shifted > 0.05 and wider > 0.05
    assert float(mmd(a + 1.0, b, kernel)) < float(mmd(a + 2.0, b, kernel))   # further off, larger


def test_the_estimate_is_symmetric_and_differentiable_and_a_single_code_counts_zero():
    q = torch.randn(8, 2, generator=gen(5), requires_grad=True)
    p = torch.randn(8, 2, generator=gen(6))
    assert float(mmd(q.detach(), p)) == pytest.approx(float(mmd(p, q.detach())), abs=1e-6)
    mmd(q, p).backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    assert float(mmd(q[:1].detach(), p[:1])) == 0.0


def test_prior_draws_come_from_the_global_rng_unless_a_generator_is_given():
    z = torch.zeros(5, 3)
    torch.manual_seed(11)
    a = prior_draws(z, 2.0)
    torch.manual_seed(11)
    assert torch.equal(a, 2.0 * torch.randn(5, 3))
    assert torch.equal(prior_draws(z, 1.0, gen(4)), torch.randn(5, 3, generator=gen(4)))
    assert code_mmd(z.numpy() + 0.1, "imq", 1.0, (1.0,), seed=4) == code_mmd(z.numpy() + 0.1, "imq", 1.0, (1.0,), 4)


# ------------------------------------------------------------------ the objectives


def tiny_model(kind: str, **fields) -> nn.Module:
    torch.manual_seed(0)
    return build_model(model_spec(kind, encoder=[8], latent_dim=3, **fields), (1, 4, 4))


def batch(n: int = 16) -> torch.Tensor:
    return 0.1 + 0.8 * torch.rand(n, 1, 4, 4, generator=gen(7))


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("kernel, scales, sigma", [("imq", MULTISCALE, 1.0), ("rbf", (1.0,), 0.5)])
def test_the_wae_loss_is_the_summed_reconstruction_plus_lambda_times_the_mmd(loss, kernel, scales, sigma):
    model, x = tiny_model("wae", prior_scale=sigma), batch()
    assert isinstance(model, WassersteinAutoencoder) and model.kind == "wae"
    torch.manual_seed(5)
    value, parts = wae_objective(loss, 10.0, kernel, sigma, scales)(model, x, None, 0)
    with torch.no_grad():
        z = model.encode(x)
        x_hat = model.decode(z)
    torch.manual_seed(5)
    draws = sigma * torch.randn(16, 3)                                     # the prior draws, fixed by the seed
    recon = summed_loss(loss)(x_hat, x)
    by_hand = loop_mmd(z.double().numpy(), draws.double().numpy(), kernel, sigma, scales)
    assert float(parts["recon"]) == pytest.approx(float(recon), rel=1e-6)
    assert float(parts["mmd"]) == pytest.approx(by_hand, rel=1e-4, abs=1e-6)
    assert float(value.detach()) == pytest.approx(float(recon) + 10.0 * by_hand, rel=1e-5)
    per_pixel_sum = ((x_hat - x) ** 2).flatten(1).sum(1).mean() if loss == "mse" else None
    if per_pixel_sum is not None:                                          # c is per example: summed, not averaged
        assert float(recon) == pytest.approx(float(per_pixel_sum), rel=1e-6)


def test_a_wae_with_lambda_zero_is_the_autoencoder_on_the_summed_loss():
    model, x = tiny_model("wae", mmd_weight=0.0), batch()
    value, _ = wae_objective("mse", 0.0, "imq")(model, x, None, 0)
    with torch.no_grad():
        assert float(value.detach()) == pytest.approx(float(summed_loss("mse")(model(x)["x_hat"], x)), rel=1e-6)


def infovae_parts(alpha: float, lam: float, loss: str = "bce", kernel: str = "rbf"):
    """(value of eq. 6's objective, the VAE objective (beta 1) and the MMD, all with the same draws)."""
    model, x = tiny_model("infovae"), batch()
    torch.manual_seed(9)
    value, parts = infovae_objective(loss, alpha, lam, kernel)(model, x, None, 0)
    torch.manual_seed(9)
    vae_value, vae_parts = vae_objective(loss, 1.0, 0)(model, x, None, 0)   # the same reparameterization draws
    return float(value.detach()), parts, float(vae_value.detach()), vae_parts


@pytest.mark.parametrize("alpha, lam", [(0.0, 1000.0), (0.0, 1.0), (1.0, 0.0), (0.5, 2.0), (-1.0, 3.0), (1.0, 1.0)])
def test_eq6_weights_the_vae_terms_and_the_mmd_as_the_paper(alpha, lam):
    value, parts, _, vae_parts = infovae_parts(alpha, lam)
    assert float(parts["recon"]) == pytest.approx(float(vae_parts["recon"]), rel=1e-6)
    assert float(parts["kl"]) == pytest.approx(float(vae_parts["kl"]), rel=1e-6)
    expected = float(vae_parts["recon"]) + (1 - alpha) * float(vae_parts["kl"]) + (alpha + lam - 1) * float(parts["mmd"])
    assert value == pytest.approx(expected, rel=1e-5)


def test_alpha_0_lambda_1_is_the_vae_and_alpha_1_lambda_0_is_the_reconstruction_alone():
    value, parts, vae_value, _ = infovae_parts(0.0, 1.0)
    assert value == pytest.approx(vae_value, rel=1e-6)                     # KL 1, MMD 0: the negative ELBO
    value, parts, _, vae_parts = infovae_parts(1.0, 0.0)
    assert value == pytest.approx(float(vae_parts["recon"]), rel=1e-6)     # KL 0, MMD 0
    assert float(parts["kl"]) > 0 and float(parts["mmd"]) != 0             # the terms are there, weighted 0


def test_the_infovae_mmd_is_of_the_sampled_codes_against_as_many_prior_draws():
    model, x = tiny_model("infovae"), batch()
    torch.manual_seed(2)
    _, parts = infovae_objective("bce", 0.0, 10.0, "imq")(model, x, None, 0)
    torch.manual_seed(2)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)            # the forward pass's draw first
        draws = torch.randn(16, 3)                                         # then the prior's
    assert float(parts["mmd"]) == pytest.approx(loop_mmd(z.double().numpy(), draws.double().numpy(), "imq", 1.0),
                                                rel=1e-4, abs=1e-6)


# ------------------------------------------------------------------ the specs


@pytest.mark.parametrize("model, expected", [
    ({"kind": "wae", "mmd_weight": -1}, r"model\.mmd_weight: Input should be greater than or equal to 0"),
    ({"kind": "wae", "prior_scale": 0}, r"model\.prior_scale: Input should be greater than 0"),
    ({"kind": "wae", "kernel": "laplace"}, r"model\.kernel: Input should be 'imq' or 'rbf'"),
    ({"kind": "infovae", "alpha": 1.5}, r"model\.alpha: the KL weight 1 - alpha would be negative .*expected alpha at most 1"),
    ({"kind": "infovae", "alpha": 0, "mmd_weight": 0},
     r"model\.mmd_weight: the MMD weight alpha \+ lambda - 1 would be negative \(-1\): expected mmd_weight at least 1"),
    ({"kind": "infovae", "alpha": 0.5, "mmd_weight": 0.2}, r"model\.mmd_weight: .*expected mmd_weight at least 1 - alpha = 0\.5"),
    ({"kind": "infovae", "alpha": 1, "mmd_weight": -0.5}, r"model\.mmd_weight: lambda is a weight: expected at least 0"),
    ({"kind": "infovae", "mmd_weight": math.inf}, r"model\.mmd_weight: expected a finite number"),
])
def test_a_bad_setting_is_one_line_naming_the_field(model, expected):
    assert re.search(expected, one_line_config_error({"encoder": [16], **model}))


def test_the_defaults_are_the_papers():
    wae, info = model_spec("wae"), model_spec("infovae")
    assert (wae.kernel, wae.mmd_weight, wae.prior_scale, wae.multiscale) == ("imq", 10.0, 1.0, True)
    assert (info.alpha, info.mmd_weight, info.kernel, info.multiscale) == (0.0, 1000.0, "rbf", False)
    assert info.kl_weight() == 1.0 and info.mmd_term_weight() == 999.0


@pytest.mark.parametrize("kind", ["wae", "infovae"])
def test_both_fuse_and_only_the_gradient_trainer_trains_them(kind):
    assert family(kind).fused_objective() == {"wae": "wasserstein", "infovae": "info"}[kind]
    assert family(kind).methods == ("gradient",)
    assert {"embed", "decode", "generative"} == set(family(kind).capabilities)


# ------------------------------------------------------------------ end to end




@pytest.mark.parametrize("model, parts", [
    ({"kind": "wae"}, ["recon", "mmd"]),
    ({"kind": "wae", "kernel": "rbf", "multiscale": False, "prior_scale": 2.0}, ["recon", "mmd"]),
    ({"kind": "infovae", "mmd_weight": 100}, ["recon", "kl", "mmd"]),
], ids=["wae", "wae-rbf-scale2", "infovae"])
def test_each_family_trains_end_to_end_and_writes_its_metrics(tmp_path, model, parts):
    run = train(tmp_path, "run", model)
    written = json.loads((run.path / "metrics.json").read_text())
    assert run.status == "completed" and written["status"] == "completed"
    own = ["mmd", "diversity", "nn_distance"] + (["elbo", "kl"] if model["kind"] == "infovae" else [])
    assert all(math.isfinite(written[k]) for k in ["recon_mse", "knn_acc", *own]), written
    assert all(f"train_{p}" in run.history[-1] and f"val_{p}" in run.history[-1] for p in parts)
    assert aelab.load_run(run.path).config.model.kind == model["kind"]
    loaded = load_model(run.path)
    assert loaded.kind == model["kind"] and loaded.latent_dim == 4
    if model["kind"] == "wae":
        assert loaded.prior_scale == model.get("prior_scale", 1.0)
        with torch.no_grad():                                              # sample() decodes sigma_z * N(0, I)
            z = model.get("prior_scale", 1.0) * torch.randn(5, 4, generator=gen(3))
            assert torch.equal(loaded.sample(5, generator=gen(3)), loaded.decode(z))


def test_the_mmd_penalty_pulls_the_codes_towards_the_prior(tmp_path):
    free = train(tmp_path, "wae0", {"kind": "wae", "mmd_weight": 0.0}, epochs=8)
    matched = train(tmp_path, "wae", {"kind": "wae", "mmd_weight": 10.0}, epochs=8)
    assert matched.metrics["mmd"] < 0.5 * free.metrics["mmd"]


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_aelab_sample_prior_decodes_the_wae_prior(tmp_path, scale):
    """The prior sampler draws the WAE's own N(0, sigma_z^2 I): exactly ``model.sample``'s codes."""
    run = train(tmp_path, "wae", {"kind": "wae", "prior_scale": scale}, epochs=2)
    result = CliRunner().invoke(app, ["sample", str(run.path), "--sampler", "prior", "--n", "8", "--seed", "3"])
    assert result.exit_code == 0, result.output
    with np.load(run.path / "samples-prior" / "samples.npz") as f:
        images, codes = f["images"], f["codes"]
    assert images.shape == (8, 1, 8, 8) and codes.shape == (8, 4)
    model = load_model(run.path)
    with torch.no_grad():
        np.testing.assert_allclose(model.decode(torch.as_tensor(codes)).numpy(), images, atol=1e-6)
        np.testing.assert_array_equal(codes, (scale * torch.randn(8, 4, generator=gen(3))).numpy())
