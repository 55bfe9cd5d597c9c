"""The VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, eq. 3 and Appendix
A.1) against oracles: the nearest-code assignment against a numpy loop,
eq. 3's terms computed by hand, where each term's gradient goes (the
straight-through estimator, the codebook term to the codebook only, the
commitment term to the encoder only), one and two EMA steps against the
formulas with debiasing and Laplace smoothing, no EMA step outside
training, usage and perplexity of a known assignment, both code layouts;
the refused settings; then runs trained end to end, a SIGKILL-resumed run
with the EMA codebook, and ``aelab sample --sampler gmm`` decoding
quantised codes."""
from __future__ import annotations

import copy
import json
import math
import re
import signal

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import aelab
from aelab.cli import app
from aelab.errors import ModelSpecError
from aelab.models import build_model
from aelab.models.families.vqvae.family import vq_terms, vqvae_objective
from aelab.models.families.vqvae.quantizer import VectorQuantizer, code_statistics
from aelab.models.family import family
from aelab.runs import load_model
from aelab.spec import model_spec
from aelab.training.objectives import summed_loss
from conftest import TINY, one_line_config_error, train_killed_after_rows, train_tiny as train
from test_training import assert_resumes_to_the_uninterrupted_run

SHAPE = (1, 8, 8)


def vqvae(**fields) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = model_spec("vqvae", **{"encoder": [16], "latent_dim": 6, "embedding_dim": 2, "codebook_size": 5,
                                  **fields})
    return build_model(spec, SHAPE)


def images(n: int = 7, seed: int = 1) -> torch.Tensor:
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ assignment


def loop_nearest(v: np.ndarray, e: np.ndarray) -> np.ndarray:
    """argmin_j ||v_n - e_j||^2 (eq. 2), one vector at a time, float64."""
    return np.array([int(np.argmin([((x - c) ** 2).sum() for c in e])) for x in v.astype(np.float64)])


@pytest.mark.parametrize("k, d", [(1, 3), (7, 1), (16, 4), (64, 8)])
def test_each_vector_goes_to_its_nearest_codebook_vector_as_a_numpy_loop(k, d):
    torch.manual_seed(k)
    q = VectorQuantizer(k, d)
    v = 2 * torch.randn(3, 11, d)
    idx = q.nearest(v)
    assert idx.shape == (3, 11)
    np.testing.assert_array_equal(idx.reshape(-1).numpy(), loop_nearest(v.reshape(-1, d).numpy(), q.embedding.detach().numpy()))
    np.testing.assert_array_equal(q.lookup(idx).detach().numpy(), q.embedding.detach().numpy()[idx.numpy()])


def test_the_initial_codebook_is_sonnets_uniform_variance_scaling():
    torch.manual_seed(0)
    e = VectorQuantizer(4096, 3).embedding.detach()
    limit = math.sqrt(3 / 3)
    assert e.abs().max() <= limit and e.abs().max() > 0.99 * limit and abs(float(e.var()) - limit ** 2 / 3) < 0.01


def test_a_flat_code_is_read_as_consecutive_vectors_and_quantised_vector_by_vector():
    model = vqvae().eval()
    x = images()
    with torch.no_grad():
        out, z = model(x), model.encode(x)
    e = model.quantizer.embedding.detach().numpy()
    idx = loop_nearest(z.numpy().reshape(-1, 2), e).reshape(len(x), 3)
    np.testing.assert_array_equal(out["indices"].numpy(), idx)
    np.testing.assert_array_equal(out["z_q"].detach().numpy(), e[idx].reshape(len(x), 6))
    assert torch.equal(out["z"], z)
    with torch.no_grad():   # the decoder sees z_q (the straight-through value is z_q forward)
        assert torch.allclose(out["x_hat"], model.decoder(out["z_q"]), atol=1e-6)
        assert torch.equal(model.decode(z), out["x_hat"])                       # decode quantises first
        assert torch.allclose(model.decode(z), model.decode(out["z_q"]), atol=1e-6)  # z and its quanta alike
        assert torch.equal(model.embed(x), z)                                   # embed is z_e


def conv_vqvae(**fields):
    return vqvae(encoder=[{"type": "conv2d", "filters": 3, "stride": 2, "padding": 1}],
                 latent_dim=32, embedding_dim=2, code_layout="spatial", **fields)


def test_a_spatial_code_quantises_every_position_of_the_encoders_last_image():
    model = conv_vqvae().eval()
    x = images()
    with torch.no_grad():
        feature = model.to_latent[0](model.body(x))                   # the 1x1 convolution: (B, D, 4, 4)
        out = model(x)
    assert feature.shape == (len(x), 2, 4, 4) and model.latent_dim == 32 and model.grid == (4, 4)
    positions = feature.permute(0, 2, 3, 1).reshape(-1, 2).numpy()   # one D-vector per (b, h, w)
    e = model.quantizer.embedding.detach().numpy()
    idx = loop_nearest(positions, e).reshape(len(x), 16)
    np.testing.assert_array_equal(out["indices"].numpy(), idx)
    z_q = e[idx].reshape(len(x), 4, 4, 2).transpose(0, 3, 1, 2).reshape(len(x), 32)
    np.testing.assert_allclose(out["z_q"].numpy(), z_q)
    assert out["x_hat"].shape == (len(x), *SHAPE)
    assert torch.equal(model.codes(model.vectors(out["z"])), out["z"])


def test_a_spatial_code_that_does_not_fit_is_one_line_naming_the_field():
    with pytest.raises(ModelSpecError, match=r"model\.latent_dim: a spatial code of 4x4 positions of "
                                             r"embedding_dim 2 has 32 values: expected latent_dim 32, got 30"):
        vqvae(encoder=[{"type": "conv2d", "filters": 3, "stride": 2, "padding": 1}], latent_dim=30,
              code_layout="spatial")
    with pytest.raises(ModelSpecError, match=r"model\.code_layout: spatial .* encoder ends in \(16\)"):
        vqvae(code_layout="spatial")


def test_a_flat_vqvae_starts_from_the_autoencoders_weights():
    model = vqvae()
    torch.manual_seed(0)
    ae = build_model(model_spec("ae", encoder=[16], latent_dim=6), SHAPE)
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith("quantizer.")}
    assert ours.keys() == ae.state_dict().keys() and all(torch.equal(v, ae.state_dict()[k]) for k, v in ours.items())


# ------------------------------------------------------------------ eq. 3 and its gradients


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("beta", [0.25, 1.7])
def test_the_loss_is_eq3_reconstruction_plus_codebook_plus_beta_commitment(loss, beta):
    model, x = vqvae(), images()
    value, parts = vqvae_objective(loss, beta)(model, x, None, 0)
    with torch.no_grad():
        z = model.encode(x).numpy().astype(np.float64)
        e = model.quantizer.embedding.numpy().astype(np.float64)
        z_q = e[loop_nearest(z.reshape(-1, 2), e)].reshape(z.shape)
        x_hat = model.decoder(torch.as_tensor(z_q, dtype=torch.float32))
    recon = float(summed_loss(loss)(x_hat, x))
    sq = float(((z - z_q) ** 2).sum(1).mean())                      # ||z_e - e||^2 over the code, batch mean
    assert math.isclose(float(parts["recon"]), recon, rel_tol=1e-5)
    assert math.isclose(float(parts["codebook"]), sq, rel_tol=1e-5) and math.isclose(float(parts["commitment"]), sq, rel_tol=1e-5)
    assert math.isclose(float(value.detach()), recon + sq + beta * sq, rel_tol=1e-5)
    ema_value, ema_parts = vqvae_objective(loss, beta, learned_codebook=False)(vqvae(codebook="ema"), x, None, 0)
    assert "codebook" not in ema_parts


def grads(model) -> dict[str, torch.Tensor | None]:
    return {name: p.grad for name, p in model.named_parameters()}


def test_the_straight_through_estimator_passes_the_gradient_wrt_z_q_to_z_e():
    model, x = vqvae(), images()
    out = model(x)
    out["z"].retain_grad()
    summed_loss("mse")(out["x_hat"], x).backward()
    z_q = out["z_q"].detach().clone().requires_grad_()              # the decoder on z_q as a leaf
    summed_loss("mse")(model.decoder(z_q), x).backward()
    assert out["z"].grad.abs().sum() > 0
    assert torch.allclose(out["z"].grad, z_q.grad, atol=1e-7)
    assert model.quantizer.embedding.grad is None                   # the reconstruction never reaches the codebook


def test_decode_passes_the_straight_through_gradient_to_the_code():
    """LSO differentiates decode(z): its gradient w.r.t. z is the decoder's w.r.t. z_q."""
    model = vqvae().eval()
    z = (2 * torch.randn(4, 6, generator=torch.Generator().manual_seed(5))).requires_grad_()
    target = images(4)
    grad, = torch.autograd.grad(summed_loss("mse")(model.decode(z), target), z)
    z_q = model.quantize(z.detach())[0].requires_grad_()
    expected, = torch.autograd.grad(summed_loss("mse")(model.decoder(z_q), target), z_q)
    assert grad.abs().sum() > 0 and torch.allclose(grad, expected, atol=1e-7)


def test_the_codebook_term_trains_only_the_codebook_and_as_its_derivative():
    model, x = vqvae(), images()
    out = model(x)
    vq_terms(out["z"], out["z_q"])[0].backward()
    g = grads(model)
    assert all(v is None for k, v in g.items() if k != "quantizer.embedding")
    with torch.no_grad():  # d/de_j (1/B) sum_n ||z_n - e_k(n)||^2 = (2/B) sum_{n: k(n)=j} (e_j - z_n)
        z = model.encode(x).reshape(-1, 2).numpy()
        e = model.quantizer.embedding.numpy()
    idx = out["indices"].reshape(-1).numpy()
    expected = np.zeros_like(e)
    for n, j in enumerate(idx):
        expected[j] += 2 / len(x) * (e[j] - z[n])
    np.testing.assert_allclose(g["quantizer.embedding"].numpy(), expected, atol=1e-6)


def test_the_commitment_term_trains_only_the_encoder():
    model, x = vqvae(), images()
    out = model(x)
    vq_terms(out["z"], out["z_q"])[1].backward()
    g = grads(model)
    assert all(g[k] is None for k in g if k.startswith(("decoder.", "quantizer.")))
    assert all(g[k] is not None and g[k].abs().sum() > 0 for k in g if k.startswith(("body.", "to_latent.")))


def test_the_objectives_gradient_is_the_sum_of_the_terms_each_where_it_belongs():
    """The whole eq. 3 at once: the codebook gets only its term's
    derivative, the encoder the straight-through reconstruction gradient
    plus beta times the commitment's, the decoder only the reconstruction's."""
    beta, x = 0.6, images()
    model = vqvae()
    vqvae_objective("mse", beta)(model, x, None, 0)[0].backward()
    total = {k: v.clone() for k, v in grads(model).items()}
    model.zero_grad(set_to_none=True)
    out = model(x)
    z_q = out["z_q"].detach()
    recon = summed_loss("mse")(model.decoder(out["z"] + (z_q - out["z"]).detach()), x)
    (recon + beta * (out["z"] - z_q).pow(2).flatten(1).sum(1).mean()).backward()
    by_hand = grads(model)
    assert all(torch.allclose(total[k], by_hand[k], atol=1e-6) for k in total if not k.startswith("quantizer."))
    z_e = model.encode(x).detach()
    codebook_only = torch.autograd.grad((z_e - model.quantize(z_e)[0]).pow(2).flatten(1).sum(1).mean(),
                                        model.quantizer.embedding)[0]
    assert torch.allclose(total["quantizer.embedding"], codebook_only, atol=1e-6)


# ------------------------------------------------------------------ the EMA codebook


def ema_oracle(e0, batches, k, gamma, eps):
    """Appendix A.1's recurrences as Sonnet runs them: zero-started, debiased, Laplace-smoothed."""
    n_ema, m_ema, e = np.zeros(k), np.zeros_like(e0), e0.astype(np.float64)
    for t, v in enumerate(batches, start=1):
        idx = loop_nearest(v, e)
        counts = np.array([(idx == i).sum() for i in range(k)], dtype=np.float64)
        sums = np.array([v[idx == i].sum(0) if (idx == i).any() else np.zeros(v.shape[1]) for i in range(k)])
        n_ema = gamma * n_ema + (1 - gamma) * counts
        m_ema = gamma * m_ema + (1 - gamma) * sums
        size, total = n_ema / (1 - gamma ** t), m_ema / (1 - gamma ** t)
        smoothed = (size + eps) / (size.sum() + k * eps) * size.sum()
        e = total / smoothed[:, None]
    return e, n_ema, m_ema


@pytest.mark.parametrize("gamma, eps", [(0.99, 1e-5), (0.5, 0.1)])
def test_two_ema_steps_are_the_formulas_with_debiasing_and_laplace_smoothing(gamma, eps):
    torch.manual_seed(0)
    q = VectorQuantizer(6, 2, ema=True, decay=gamma, epsilon=eps)
    e0 = q.embedding.clone().numpy()
    batches = [torch.randn(20, 2), torch.randn(20, 2) + 0.3]
    for v in batches:
        q.ema_update(v, q.nearest(v))
    e, n, m = ema_oracle(e0, [b.numpy().astype(np.float64) for b in batches], 6, gamma, eps)
    np.testing.assert_allclose(q.cluster_size.numpy(), n, rtol=1e-5)
    np.testing.assert_allclose(q.embedding_sum.numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(q.embedding.numpy(), e, rtol=1e-4, atol=1e-6)
    assert int(q.steps) == 2


def test_after_one_step_a_used_code_is_its_vectors_mean_and_an_unused_one_the_origin():
    q = VectorQuantizer(3, 2, ema=True, decay=0.9, epsilon=1e-12)
    q.embedding.copy_(torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]]))
    v = torch.tensor([[0.1, 0.2], [0.3, -0.2], [4.0, 6.0]])
    q.ema_update(v, q.nearest(v))
    torch.testing.assert_close(q.embedding, torch.tensor([[0.2, 0.0], [4.0, 6.0], [0.0, 0.0]]))


def test_the_ema_codebook_steps_in_training_forwards_only():
    model, x = vqvae(codebook="ema"), images()
    assert not any("quantizer" in k for k, _ in model.named_parameters())            # buffers, not parameters
    assert {"quantizer.embedding", "quantizer.cluster_size", "quantizer.embedding_sum",
            "quantizer.steps"} <= set(model.state_dict())
    before = copy.deepcopy(model.state_dict())
    model.eval()
    model(x)                                                                         # eval mode, with gradients
    with torch.no_grad():
        model.train()
        model(x)                                                                     # training mode, no_grad
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model.train()
    out = model(x)
    assert int(model.quantizer.steps) == 1 and not torch.equal(model.quantizer.embedding, before["quantizer.embedding"])
    np.testing.assert_allclose(out["z_q"].numpy(),                                   # z_q: the codebook before the step
                               before["quantizer.embedding"].numpy()[out["indices"].numpy()].reshape(len(x), 6))


def test_the_learned_codebook_is_a_parameter_with_no_ema_state():
    model = vqvae()
    assert "quantizer.embedding" in dict(model.named_parameters())
    assert not any(k.startswith("quantizer.") and k != "quantizer.embedding" for k in model.state_dict())


# ------------------------------------------------------------------ metrics


def test_usage_and_perplexity_of_a_known_assignment():
    stats = code_statistics(np.array([[0, 0], [1, 3]]), 8)           # shares 1/2, 1/4, 0, 1/4
    assert stats["codebook_usage"] == 3 / 8
    assert math.isclose(stats["perplexity"], math.exp(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))))
    assert math.isclose(stats["perplexity"], 2 ** 1.5)
    assert code_statistics(np.full(10, 4), 5) == {"codebook_usage": 0.2, "perplexity": 1.0}
    assert math.isclose(code_statistics(np.arange(12) % 6, 6)["perplexity"], 6.0)  # uniform use: K


# ------------------------------------------------------------------ bad values


@pytest.mark.parametrize("model, expected", [
    ({"codebook_size": 0}, r"model\.codebook_size: Input should be greater than or equal to 1"),
    ({"commitment_cost": -0.1}, r"model\.commitment_cost: Input should be greater than or equal to 0"),
    ({"commitment_cost": math.inf}, r"model\.commitment_cost: expected a finite number"),
    ({"decay": 1.0}, r"model\.decay: Input should be less than 1"),
    ({"decay": 0}, r"model\.decay: Input should be greater than 0"),
    ({"epsilon": 0}, r"model\.epsilon: Input should be greater than 0"),
    ({"embedding_dim": 0}, r"model\.embedding_dim: Input should be greater than or equal to 1"),
    ({"latent_dim": 6, "embedding_dim": 4},
     r"model\.embedding_dim: the code of latent_dim 6 is cut into vectors .* expected a divisor of 6 \(got 4\)$"),
    ({"codebook": "kmeans"}, r"model\.codebook: Input should be 'loss' or 'ema'"),
    ({"code_layout": "spatial"}, r"model\.code_layout: spatial .* expected embedding_dim too"),
    ({"code_layout": "grid", "embedding_dim": 2}, r"model\.code_layout: Input should be 'flat' or 'spatial'"),
])
def test_a_bad_setting_is_one_line_naming_the_field(model, expected):
    assert re.search(expected, one_line_config_error({"kind": "vqvae", "encoder": [16], **model}))


def test_the_defaults_are_the_papers_and_sonnets():
    spec = model_spec("vqvae", latent_dim=8)
    assert (spec.codebook_size, spec.commitment_cost, spec.codebook, spec.decay, spec.epsilon) == \
        (512, 0.25, "loss", 0.99, 1e-5)
    assert spec.vector_dim() == 8 and spec.code_layout == "flat"
    fam = family("vqvae")
    assert fam.capabilities == {"embed", "decode"} and fam.methods == ("gradient",) and fam.fused_objective() is None


# ------------------------------------------------------------------ end to end


@pytest.mark.parametrize("model, parts", [
    ({"kind": "vqvae", "embedding_dim": 2, "codebook_size": 16}, ["recon", "codebook", "commitment"]),
    ({"kind": "vqvae", "embedding_dim": 2, "codebook_size": 16, "codebook": "ema"}, ["recon", "commitment"]),
    ({"kind": "vqvae", "encoder": [{"type": "conv2d", "filters": 4, "stride": 2, "padding": 1}], "latent_dim": 32,
      "embedding_dim": 2, "code_layout": "spatial", "codebook_size": 8, "codebook": "ema"}, ["recon", "commitment"]),
], ids=["loss", "ema", "spatial-ema"])
def test_each_codebook_trains_end_to_end_and_writes_its_metrics(tmp_path, model, parts):
    run = train(tmp_path, "run", model, epochs=6)
    written = json.loads((run.path / "metrics.json").read_text())
    assert run.status == "completed" and written["status"] == "completed"
    assert all(math.isfinite(written[k]) for k in ["recon_mse", "knn_acc", "quantization_error"]), written
    k = model["codebook_size"]
    assert 1 / k <= written["codebook_usage"] <= 1 and 1 <= written["perplexity"] <= k * written["codebook_usage"] + 1e-9
    assert written["perplexity"] > 2                                   # it uses more than a couple of codes
    assert all(f"train_{p}" in run.history[-1] and f"val_{p}" in run.history[-1] for p in parts)
    assert ("train_codebook" in run.history[-1]) == (model.get("codebook", "loss") == "loss")
    assert "diversity" not in written                                  # not generative: no prior samples scored
    loaded = load_model(run.path)
    assert loaded.kind == "vqvae" and torch.equal(loaded.quantizer.embedding, load_model(run.path).quantizer.embedding)
    x = torch.as_tensor(aelab.data.load_dataset(run.config.data).x_test[:50])
    with torch.no_grad():
        out = loaded(x)
    stats = code_statistics(out["indices"].numpy(), k)
    assert stats["codebook_usage"] <= written["codebook_usage"] + 1e-12  # 50 of the test images use at most as many


def test_the_ema_codebook_learns_and_it_is_in_the_saved_weights(tmp_path):
    run = train(tmp_path, "ema", {"kind": "vqvae", "embedding_dim": 2, "codebook_size": 16, "codebook": "ema"})
    model = load_model(run.path)
    n_train = len(aelab.data.load_dataset(run.config.data).x_train)
    assert int(model.quantizer.steps) == math.ceil(n_train / 64) * run.metrics["epochs_trained"]  # one per batch
    torch.manual_seed(0)
    fresh = build_model(run.config.model, SHAPE)
    assert not torch.equal(fresh.quantizer.embedding, model.quantizer.embedding)


def test_an_ema_run_killed_mid_way_resumes_to_the_same_bits(tmp_path):
    cfg = copy.deepcopy(TINY)
    cfg["model"] = {"kind": "vqvae", "encoder": [16], "latent_dim": 4, "embedding_dim": 2, "codebook_size": 16,
                    "codebook": "ema"}
    cfg["train"]["epochs"] = 3
    assert train_killed_after_rows(cfg, tmp_path / "killed", 2) == -signal.SIGKILL
    assert_resumes_to_the_uninterrupted_run(tmp_path / "killed", cfg, tmp_path / "straight")


def test_aelab_sample_gmm_decodes_quantised_codes(tmp_path):
    """The GMM is fitted to z_e; its continuous draws are quantised by
    ``decode``, so with a single code vector every sample is one of the K
    decoded codebook vectors."""
    run = train(tmp_path, "one", {"kind": "vqvae", "codebook_size": 6}, epochs=3)   # one 4-D vector per image
    result = CliRunner().invoke(app, ["sample", str(run.path), "--sampler", "gmm", "--n", "40", "--seed", "2"])
    assert result.exit_code == 0, result.output
    with np.load(run.path / "samples-gmm" / "samples.npz") as f:
        images_, codes = f["images"], f["codes"]
    assert images_.shape == (40, *SHAPE) and codes.shape == (40, 4)
    model = load_model(run.path)
    with torch.no_grad():
        z_q, idx = model.quantize(torch.as_tensor(codes))
        np.testing.assert_allclose(model.decoder(z_q).numpy(), images_, atol=1e-6)
        decoded_codebook = model.decoder(model.quantizer.embedding).numpy()
    np.testing.assert_allclose(images_, decoded_codebook[idx[:, 0].numpy()], atol=1e-6)
    assert len(np.unique(images_.reshape(40, -1).round(5), axis=0)) <= 6
