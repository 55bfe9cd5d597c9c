"""The VAE variants -- the beta-TCVAE (Chen, Li, Grosse & Duvenaud 2018), the
beta-VAE with a controlled capacity increase (Burgess et al. 2018, eq. 8) and
the importance weighted autoencoder (Burda, Grosse & Salakhutdinov 2016,
eq. 8) -- against oracles: the q(z) estimators and the decomposition of eq. 2
written out as loops in numpy, the telescoping identity of the three terms,
the capacity schedule and |KL - C| by hand, L_k by hand with a logsumexp, k = 1
against the VAE with the same noise, L_k rising with k on a trained model, the
refused settings; then each family trained end to end through ``aelab.train``."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from aelab.data import load_dataset
from aelab.evaluation import elbo_metrics
from aelab.models import build_model
from aelab.models.autoencoder import kld
from aelab.models.families.dbvae.family import dbvae_objective
from aelab.models.families.iwae.bound import bound, log_weights, split_bound
from aelab.models.families.iwae.family import iwae_objective
from aelab.models.families.tcvae.estimators import (minibatch_terms, mss, mss_log_weights, mws, pairwise_log_q,
                                                    split_decomposition)
from aelab.models.families.tcvae.family import decomposition_metrics, tcvae_objective
from aelab.models.family import family
from aelab.runs import load_model
from aelab.spec import load_config, model_spec
from aelab.training.objectives import elementwise_loss, summed_loss, vae_objective
from conftest import TINY, one_line_config_error, train_tiny as train

KINDS = ["tcvae", "dbvae", "iwae"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_model(kind: str, **fields):
    torch.manual_seed(0)
    return build_model(model_spec(kind, encoder=[8], latent_dim=3, **fields), (1, 4, 4))


def batch(n: int = 16) -> torch.Tensor:
    return 0.1 + 0.8 * torch.rand(n, 1, 4, 4, generator=gen(7))


def codes(m: int = 5, d: int = 3, seed: int = 1):
    """(z, mu, logvar) in float64: posteriors of m images and one draw of each."""
    g = gen(seed)
    mu = torch.randn(m, d, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(m, d, generator=g, dtype=torch.float64) - 0.5
    z = mu + torch.exp(0.5 * logvar) * torch.randn(m, d, generator=g, dtype=torch.float64)
    return z, mu, logvar


def normal_pdf(z: float, mu: float, logvar: float) -> float:
    return math.exp(-0.5 * (z - mu) ** 2 / math.exp(logvar)) / math.sqrt(2 * math.pi * math.exp(logvar))


# ------------------------------------------------------------------ beta-TCVAE: the estimators


def loop_log_q(z, mu, logvar, weight):
    """log q(z_i) and sum_d log q(z_id) as loops: sum_j weight(i, j) prod_d N(z_id; mu_jd, var_jd)."""
    m, d = z.shape
    joint, marginals = np.zeros(m), np.zeros(m)
    for i in range(m):
        joint[i] = math.log(sum(weight(i, j) * math.prod(normal_pdf(z[i, e], mu[j, e], logvar[j, e])
                                                        for e in range(d)) for j in range(m)))
        marginals[i] = sum(math.log(sum(weight(i, j) * normal_pdf(z[i, e], mu[j, e], logvar[j, e])
                                        for j in range(m))) for e in range(d))
    return joint, marginals


@pytest.mark.parametrize("n", [5, 100, 60_000])
def test_minibatch_weighted_sampling_is_eq5_written_as_a_double_loop(n):
    z, mu, logvar = codes()
    joint, marginals = mws(pairwise_log_q(z, mu, logvar), n)
    want_joint, want_marginals = loop_log_q(z.numpy(), mu.numpy(), logvar.numpy(), lambda i, j: 1 / (n * 5))
    assert np.allclose(joint.numpy(), want_joint, rtol=1e-12) and np.allclose(marginals.numpy(), want_marginals,
                                                                               rtol=1e-12)


def test_the_stratified_weights_give_self_1_over_n_one_stratum_and_1_over_k_to_the_rest():
    n, m = 50, 5
    w = mss_log_weights(m, n, torch.float64).exp().numpy()
    k = m - 1
    for i in range(m):
        for j in range(m):
            want = 1 / n if i == j else (n - k) / (n * k) if j == (i + 1) % m else 1 / k
            assert w[i, j] == pytest.approx(want, rel=1e-12)
    assert np.allclose(w.sum(1), 1.0)                                      # each row a distribution over the batch
    z, mu, logvar = codes(m)
    joint, marginals = mss(pairwise_log_q(z, mu, logvar), n)
    want = loop_log_q(z.numpy(), mu.numpy(), logvar.numpy(), lambda i, j: w[i, j])
    assert np.allclose(joint.numpy(), want[0], rtol=1e-12) and np.allclose(marginals.numpy(), want[1], rtol=1e-12)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_the_three_terms_are_log_ratios_that_add_up_to_the_sampled_kl(estimator):
    z, mu, logvar = codes(6, 4, seed=3)
    t = minibatch_terms(z, mu, logvar, 1000, estimator)
    log_qz, log_prod = (mws if estimator == "mws" else mss)(pairwise_log_q(z, mu, logvar), 1000)
    for i in range(6):
        log_qzx = sum(math.log(normal_pdf(z[i, d], mu[i, d], logvar[i, d])) for d in range(4))
        log_pz = sum(math.log(normal_pdf(z[i, d], 0.0, 0.0)) for d in range(4))
        assert float(t["mi"][i]) == pytest.approx(log_qzx - float(log_qz[i]), rel=1e-10)
        assert float(t["tc"][i]) == pytest.approx(float(log_qz[i] - log_prod[i]), rel=1e-10)
        assert float(t["dimwise_kl"][i]) == pytest.approx(float(log_prod[i]) - log_pz, rel=1e-10)
        assert float(t["mi"][i] + t["tc"][i] + t["dimwise_kl"][i]) == pytest.approx(log_qzx - log_pz, rel=1e-10)


def tcvae_value(model, x, alpha, beta, gamma, n=None, estimator="mws", seed=4, grad=False):
    torch.manual_seed(seed)
    value, parts = tcvae_objective("bce", alpha, beta, gamma, n, estimator)(model, x, None, 0)
    return (value if grad else value.detach()), parts


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_with_unit_weights_the_objective_is_the_negative_elbo_with_the_sampled_kl_whatever_n(estimator):
    model, x = tiny_model("tcvae"), batch()
    values = [float(tcvae_value(model, x, 1, 1, 1, n, estimator)[0]) for n in (None, 40, 10**6)]
    torch.manual_seed(4)
    with torch.no_grad():                                                  # by hand, the same draw
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        x_hat = model.decode(z).double().numpy()
    z, mu, logvar, xn = z.double().numpy(), mu.double().numpy(), logvar.double().numpy(), x.double().numpy()
    p = np.clip(x_hat, 1e-7, 1 - 1e-7)
    recon = -(xn * np.log(p) + (1 - xn) * np.log1p(-p)).reshape(16, -1).sum(1)
    log_q = (-0.5 * (np.log(2 * np.pi) + logvar + (z - mu) ** 2 / np.exp(logvar))).sum(1)
    log_p = (-0.5 * (np.log(2 * np.pi) + z ** 2)).sum(1)
    assert values == pytest.approx([float(np.mean(recon + log_q - log_p))] * 3, rel=1e-5)


def test_with_unit_weights_it_is_the_vae_loss_in_expectation_over_the_draws():
    model, x = tiny_model("tcvae"), batch()
    ours = np.mean([float(tcvae_value(model, x, 1, 1, 1, seed=s)[0]) for s in range(300)])
    vae = np.mean([float(_seeded(vae_objective("bce", 1.0, 0), model, x, s)[0]) for s in range(300)])
    assert ours == pytest.approx(vae, abs=0.05)                            # the same draws: only the KL estimate differs


def _seeded(objective, model, x, seed, epoch=0):
    """The objective's (value, parts) in training mode, torch's global RNG seeded ``seed`` first."""
    model.train()
    torch.manual_seed(seed)
    value, parts = objective(model, x, None, epoch)
    return value.detach(), parts


def test_the_weights_multiply_their_terms_and_n_only_shifts_the_mws_estimates():
    model, x = tiny_model("tcvae"), batch()
    value, parts = tcvae_value(model, x, 0.5, 6.0, 2.0, 100)
    recon = float(parts["recon"])
    assert float(value) == pytest.approx(recon + 0.5 * float(parts["mi"]) + 6.0 * float(parts["tc"])
                                         + 2.0 * float(parts["dimwise_kl"]), rel=1e-6)
    _, other = tcvae_value(model, x, 0.5, 6.0, 2.0, 10_000)
    shift = math.log(100)                                                  # log(N' M) - log(N M)
    assert float(other["mi"] - parts["mi"]) == pytest.approx(shift, rel=1e-4)
    assert float(other["tc"] - parts["tc"]) == pytest.approx(2 * shift, rel=1e-4)          # (D - 1) log 100, D = 3
    assert float(other["dimwise_kl"] - parts["dimwise_kl"]) == pytest.approx(-3 * shift, rel=1e-4)


def test_under_mws_the_gradient_does_not_depend_on_n_but_under_mss_it_does():
    model, x = tiny_model("tcvae"), batch()

    def grads(n, estimator):
        model.zero_grad()
        tcvae_value(model, x, 1.0, 6.0, 1.0, n, estimator, grad=True)[0].backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])
    assert torch.allclose(grads(20, "mws"), grads(10**6, "mws"), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(grads(20, "mss"), grads(10**6, "mss"), rtol=1e-3, atol=1e-5)


# ------------------------------------------------------------------ beta-TCVAE: the test-split decomposition


def loop_decomposition(z, mu, logvar):
    """Eq. 2 over a whole split as loops: q(z) = 1/N sum_n q(z|n) at each code,
    E log q(z|n) and E log p(z) in closed form."""
    n, d = z.shape
    log_qz = np.mean([math.log(sum(math.prod(normal_pdf(z[i, e], mu[j, e], logvar[j, e]) for e in range(d))
                                   for j in range(n)) / n) for i in range(n)])
    log_prod = np.mean([sum(math.log(sum(normal_pdf(z[i, e], mu[j, e], logvar[j, e]) for j in range(n)) / n)
                            for e in range(d)) for i in range(n)])
    log_qzx = np.mean([sum(-0.5 * (math.log(2 * math.pi) + 1 + logvar[i, e]) for e in range(d)) for i in range(n)])
    log_pz = np.mean([sum(-0.5 * (math.log(2 * math.pi) + mu[i, e] ** 2 + math.exp(logvar[i, e])) for e in range(d))
                      for i in range(n)])
    return {"mi": log_qzx - log_qz, "tc": log_qz - log_prod, "dimwise_kl": log_prod - log_pz}


@pytest.mark.parametrize("chunk", [256, 2])
def test_the_split_decomposition_is_eq2_as_loops_and_adds_up_to_the_analytic_kl(chunk):
    z, mu, logvar = codes(7, 3, seed=5)
    ours = split_decomposition(z.float(), mu.float(), logvar.float(), chunk=chunk)
    want = loop_decomposition(z.float().double().numpy(), mu.float().double().numpy(), logvar.float().double().numpy())
    assert ours == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert sum(ours.values()) == pytest.approx(float(kld(mu.float().double(), logvar.float().double()).mean()),
                                               rel=1e-9)


def test_posteriors_equal_to_the_prior_have_no_total_correlation_and_correlated_codes_have_much():
    n = 400
    z = torch.randn(n, 3, generator=gen(8), dtype=torch.float64)
    prior = split_decomposition(z, torch.zeros(n, 3, dtype=torch.float64), torch.zeros(n, 3, dtype=torch.float64))
    assert prior["tc"] == pytest.approx(0.0, abs=1e-12)                    # q(z) = p(z), a product
    assert prior["mi"] + prior["dimwise_kl"] == pytest.approx(0.0, abs=1e-12) and abs(prior["mi"]) < 0.2
    t = torch.randn(n, 1, generator=gen(9), dtype=torch.float64)
    mu = torch.cat([t, t, torch.randn(n, 1, generator=gen(10), dtype=torch.float64)], 1)   # z_1 = z_2
    logvar = torch.full((n, 3), math.log(0.01), dtype=torch.float64)
    tied = split_decomposition(mu + 0.1 * torch.randn(n, 3, generator=gen(11), dtype=torch.float64), mu, logvar)
    assert tied["tc"] > 1.0 and tied["mi"] > 3.0


# ------------------------------------------------------------------ dbvae


@pytest.mark.parametrize("c_max, epochs, want", [
    (20.0, 4, [0.0, 5.0, 10.0, 15.0, 20.0, 20.0, 20.0]),
    (25.0, 0, [25.0] * 7),
    (0.0, 3, [0.0] * 7),
    (9.0, 1, [0.0] + [9.0] * 6),
])
def test_the_capacity_rises_linearly_from_0_to_c_max_by_epoch(c_max, epochs, want):
    spec = model_spec("dbvae", capacity_max=c_max, capacity_epochs=epochs)
    assert [spec.capacity(e) for e in range(7)] == pytest.approx(want)


def dbvae_by_hand(model, x, loss, gamma, c, per_image, seed):
    """(recon, per-image KL) of the draw seeded ``seed``, and eq. 8's loss written out."""
    torch.manual_seed(seed)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        x_hat = model.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(1).double().numpy()
    recon = float(summed_loss(loss)(x_hat, x))
    return recon + gamma * (float(np.abs(kl - c).mean()) if per_image else abs(float(kl.mean()) - c)), kl


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_the_dbvae_loss_is_the_summed_reconstruction_plus_gamma_times_abs_kl_minus_c(loss, epoch, per_image):
    spec = model_spec("dbvae", encoder=[8], latent_dim=3, gamma=7.0, capacity_max=0.4, capacity_epochs=4)
    model, x = tiny_model("dbvae", gamma=7.0, capacity_max=0.4, capacity_epochs=4), batch()
    value, parts = _seeded(dbvae_objective(loss, 7.0, spec.capacity, per_image), model, x, 3, epoch)
    c = 0.4 * min(1.0, epoch / 4)
    want, kl = dbvae_by_hand(model, x, loss, 7.0, c, per_image, 3)
    assert float(parts["capacity"]) == pytest.approx(c)
    assert float(parts["kl"]) == pytest.approx(float(kl.mean()), rel=1e-5)
    assert float(value.detach()) == pytest.approx(want, rel=1e-5)


def test_capacity_of_image_holds_each_images_kl_and_batch_the_mean_kl():
    model, x = tiny_model("dbvae"), batch()
    with torch.no_grad():
        kl = kld(*model.encode(x)).double().numpy()
    c = float(np.median(kl))                                               # C inside the batch's spread of KLs
    values = {p: float(_seeded(dbvae_objective("bce", 50.0, lambda e: c, p), model, x, 1)[0].detach())
              for p in (False, True)}
    assert values[True] - values[False] == pytest.approx(50.0 * (np.abs(kl - c).mean() - abs(kl.mean() - c)),
                                                         rel=1e-4)
    assert values[True] - values[False] > 1e-3                             # the two readings differ here
    spec = model_spec("dbvae", gamma=50.0, capacity_max=c, capacity_epochs=0, capacity_of="batch")
    train_spec = load_config(TINY | {"train": {**TINY["train"], "loss": "bce"}}).train
    assert float(_seeded(family("dbvae").objective(spec, train_spec), model, x, 1)[0].detach()) == pytest.approx(
        values[False], rel=1e-6)                                           # the field picks the reading


def test_with_no_capacity_and_gamma_one_the_dbvae_is_the_vae():
    model, x = tiny_model("dbvae"), batch()
    value, _ = _seeded(dbvae_objective("bce", 1.0, lambda e: 0.0), model, x, 2)
    vae, _ = _seeded(vae_objective("bce", 1.0, 0), model, x, 2)
    assert float(value) == pytest.approx(float(vae), rel=1e-6)             # the KL is non-negative: |KL - 0| = KL


# ------------------------------------------------------------------ iwae


def numpy_lk(x_hat, x, z, mu, logvar):
    """L_k per image from numpy arrays (k, B, ...): the Bernoulli log-likelihood,
    the prior and the posterior densities, log-mean-exp over the k draws."""
    k, b = z.shape[:2]
    p = np.clip(x_hat, 1e-7, 1 - 1e-7)
    log_px = (x * np.log(p) + (1 - x) * np.log1p(-p)).reshape(k, b, -1).sum(2)
    log_pz = (-0.5 * (np.log(2 * np.pi) + z ** 2)).sum(2)
    log_qz = (-0.5 * (np.log(2 * np.pi) + logvar + (z - mu) ** 2 / np.exp(logvar))).sum(2)
    log_w = log_px + log_pz - log_qz
    top = log_w.max(0)
    return top + np.log(np.exp(log_w - top).sum(0)) - np.log(k)


@pytest.mark.parametrize("k", [1, 2, 7])
def test_the_iwae_loss_is_minus_lk_of_eq8_by_hand_with_a_logsumexp(k):
    model, x = tiny_model("iwae", samples=k), batch()
    value, parts = _seeded(iwae_objective("bce", k), model, x, 6)
    torch.manual_seed(6)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape)
        x_hat = torch.stack([model.decode(z[i]) for i in range(k)])
    lk = numpy_lk(x_hat.double().numpy(), x.double().numpy()[None], z.double().numpy(), mu.double().numpy()[None],
                  logvar.double().numpy()[None])
    assert float(value) == pytest.approx(-float(lk.mean()), rel=1e-5)
    assert float(parts["recon"]) == pytest.approx(float(summed_loss("bce")(x_hat.flatten(0, 1), x.repeat(k, 1, 1, 1))),
                                                  rel=1e-5)


def test_with_k_1_the_iwae_is_the_vae_on_the_same_noise_with_the_kl_sampled():
    model, x = tiny_model("iwae", samples=1), batch()
    value, parts = _seeded(iwae_objective("bce", 1), model, x, 5)
    _, vae_parts = _seeded(vae_objective("bce", 1.0, 0), model, x, 5)
    assert float(parts["recon"]) == pytest.approx(float(vae_parts["recon"]), rel=1e-6)   # the same draw decoded
    torch.manual_seed(5)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn_like(mu)
        sampled_kl = (0.5 * ((mu + torch.exp(0.5 * logvar) * eps) ** 2 - eps ** 2 - logvar)).sum(1).mean()
    assert float(value) == pytest.approx(float(vae_parts["recon"]) + float(sampled_kl), rel=1e-5)
    many = [(float(_seeded(iwae_objective("bce", 1), model, x, s)[0]),
             float(_seeded(vae_objective("bce", 1.0, 0), model, x, s)[0])) for s in range(300)]
    assert np.mean([a for a, _ in many]) == pytest.approx(np.mean([b for _, b in many]), abs=0.05)  # E over the noise


def test_the_gradient_is_eq14_the_normalized_weights_times_the_gradients_of_log_w():
    model, x = tiny_model("iwae"), batch(4)
    fn = elementwise_loss("bce")
    eps = torch.randn(5, 4, 3, generator=gen(12))
    params = list(model.parameters())
    mu, logvar = model.encode(x)
    log_w, _ = log_weights(model, x, mu, logvar, eps, fn)
    grad = torch.autograd.grad(bound(log_w).sum(), params)
    mu, logvar = model.encode(x)
    log_w, _ = log_weights(model, x, mu, logvar, eps, fn)
    w = torch.softmax(log_w.detach(), 0)                                   # w~_i = w_i / sum_j w_j per image
    eq14 = torch.autograd.grad((w * log_w).sum(), params)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(grad, eq14))


@pytest.fixture(scope="module")
def trained_iwae(tmp_path_factory):
    return train(tmp_path_factory.mktemp("iwae"), "run", {"kind": "iwae", "samples": 5}, loss="bce", epochs=10)


def test_lk_rises_with_k_on_a_trained_model_and_l1_is_about_the_elbo(trained_iwae):
    model, data = load_model(trained_iwae.path), load_dataset(load_config(TINY).data)
    fn, x = elementwise_loss("bce"), data.x_test
    lk = {k: split_bound(model, x, k, fn, "cpu", seed=0) for k in (1, 5, 50)}
    assert lk[1] < lk[5] < lk[50]                                          # Theorem 1: L_k <= L_m for k < m
    assert lk[1] == pytest.approx(elbo_metrics(model, x, "bce", "cpu", 0)["elbo"], abs=0.3)
    assert trained_iwae.metrics["iwae_bound"] == pytest.approx(lk[5], abs=1e-6)  # metrics.json: k = samples, seed eval.seed
    assert trained_iwae.metrics["iwae_bound"] > trained_iwae.metrics["elbo"]


# ------------------------------------------------------------------ the specs


@pytest.mark.parametrize("model, expected", [
    ({"kind": "tcvae", "alpha": -1}, r"model\.alpha: Input should be greater than or equal to 0"),
    ({"kind": "tcvae", "beta": -0.5}, r"model\.beta: Input should be greater than or equal to 0"),
    ({"kind": "tcvae", "gamma": -2}, r"model\.gamma: Input should be greater than or equal to 0"),
    ({"kind": "tcvae", "beta": math.inf}, r"model\.beta: expected a finite number"),
    ({"kind": "tcvae", "estimator": "iws"}, r"model\.estimator: Input should be 'mws' or 'mss'"),
    ({"kind": "tcvae", "dataset_size": 0}, r"model\.dataset_size: Input should be greater than or equal to 1"),
    ({"kind": "dbvae", "capacity_max": -1}, r"model\.capacity_max: Input should be greater than or equal to 0"),
    ({"kind": "dbvae", "gamma": -1000}, r"model\.gamma: Input should be greater than or equal to 0"),
    ({"kind": "dbvae", "capacity_epochs": -3}, r"model\.capacity_epochs: Input should be greater than or equal to 0"),
    ({"kind": "dbvae", "capacity_epochs": 2.5}, r"model\.capacity_epochs: Input should be a valid integer"),
    ({"kind": "dbvae", "capacity_of": "dim"}, r"model\.capacity_of: Input should be 'image' or 'batch'"),
    ({"kind": "iwae", "samples": 0}, r"model\.samples: Input should be greater than or equal to 1"),
    ({"kind": "iwae", "samples": -5}, r"model\.samples: Input should be greater than or equal to 1"),
])
def test_a_bad_setting_is_one_line_naming_the_field(model, expected):
    assert re.search(expected, one_line_config_error({"encoder": [16], **model}))


def test_the_defaults_are_the_papers():
    tc, db, iw = model_spec("tcvae"), model_spec("dbvae"), model_spec("iwae")
    assert (tc.alpha, tc.beta, tc.gamma, tc.estimator, tc.dataset_size) == (1.0, 6.0, 1.0, "mws", None)
    assert (db.gamma, db.capacity_max, db.capacity_epochs, db.capacity_of) == (1000.0, 25.0, 10, "image")
    assert iw.samples == 5


FUSES = {"dbvae": "capacity", "tcvae": "decomposed", "iwae": "importance"}  # the fused objective each trains under


@pytest.mark.parametrize("kind", KINDS)
def test_each_fuses_only_the_gradient_trainer_trains_them_and_they_generate(kind):
    assert family(kind).fused_objective() == FUSES.get(kind) and family(kind).methods == ("gradient",)
    assert {"embed", "decode", "generative"} == set(family(kind).capabilities)


# ------------------------------------------------------------------ end to end


@pytest.mark.parametrize("model, own, parts", [
    ({"kind": "tcvae", "dataset_size": 1347}, ["mi", "tc", "dimwise_kl"], ["recon", "kl", "mi", "tc", "dimwise_kl"]),
    ({"kind": "tcvae", "estimator": "mss"}, ["mi", "tc", "dimwise_kl"], ["recon", "kl", "mi", "tc", "dimwise_kl"]),
    ({"kind": "dbvae", "gamma": 10, "capacity_max": 4, "capacity_epochs": 2}, [], ["recon", "kl", "capacity"]),
    ({"kind": "dbvae", "capacity_max": 4, "capacity_epochs": 2, "capacity_of": "batch"}, [], ["capacity"]),
    ({"kind": "iwae", "samples": 3}, ["iwae_bound"], ["recon", "kl"]),
], ids=["tcvae", "tcvae-mss", "dbvae", "dbvae-batch", "iwae"])
def test_each_family_trains_end_to_end_and_writes_its_metrics(tmp_path, model, own, parts):
    run = train(tmp_path, "run", model, loss="bce")
    written = json.loads((run.path / "metrics.json").read_text())
    assert run.status == "completed" and written["status"] == "completed"
    keys = ["recon_mse", "knn_acc", "elbo", "recon_term", "kl", "diversity", "nn_distance", *own]
    assert all(math.isfinite(written[k]) for k in keys), written
    assert all(f"train_{p}" in run.history[-1] and f"val_{p}" in run.history[-1] for p in parts)
    loaded = load_model(run.path)
    assert loaded.kind == model["kind"] and loaded.latent_dim == 4
    if model["kind"] == "tcvae":                                           # the three terms are the analytic KL
        data = load_dataset(load_config(TINY).data)
        split = decomposition_metrics(loaded, data.x_test, "cpu", 10**6, 0)
        kl = elbo_metrics(loaded, data.x_test, "bce", "cpu", 0)["kl"]
        assert sum(split.values()) == pytest.approx(kl, rel=1e-4, abs=1e-4)
    if model["kind"] == "dbvae":                                           # C of each epoch, from the epoch alone
        assert [r["train_capacity"] for r in run.history] == pytest.approx([0.0, 2.0, 4.0, 4.0])


def test_a_run_fills_in_its_training_split_size_as_the_estimators_n(tmp_path):
    """beta-TCVAE's N left empty: the run records its training split's size in config.yaml."""
    import yaml
    run = train(tmp_path, "n", {"kind": "tcvae", "estimator": "mss"}, epochs=1)
    from aelab.data import load_dataset
    n = len(load_dataset(run.config.data).x_train)
    assert run.config.model.dataset_size == n
    assert yaml.safe_load((run.path / "config.yaml").read_text())["model"]["dataset_size"] == n
    given = train(tmp_path, "given", {"kind": "tcvae", "estimator": "mss", "dataset_size": 5000}, epochs=1)
    assert given.config.model.dataset_size == 5000                     # an explicit N is kept
