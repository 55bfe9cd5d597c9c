"""Tests for aelab.models (builder, mirrored decoders, VAE maths) and the training objectives."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from aelab.errors import AelabError, ModelSpecError
from aelab.models import VAE, Autoencoder, Classifier, build_model, count_parameters, kld, output_range_warning
from aelab.spec import ModelSpec, load_config
from aelab.training.objectives import (ae_objective, classifier_objective, elementwise_loss, kl_weight,
                                       make_objective, vae_objective)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def spec(**kw) -> ModelSpec:
    return ModelSpec.model_validate(kw)


def conv(filters, kernel=3, **kw) -> dict:
    return {"type": "conv2d", "filters": filters, "kernel": kernel, **kw}


def run(model: nn.Module, shape, batch=3, train=False) -> dict:
    torch.manual_seed(0)
    model.train(train)
    with torch.no_grad():
        return model(torch.rand(batch, *shape))


def activations(module: nn.Module) -> list[type]:
    """Activation module types in the order they are applied."""
    kinds = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.LeakyReLU, nn.GELU, nn.Softmax)
    return [type(m) for m in module.modules() if isinstance(m, kinds)]


def build_error(model_spec: ModelSpec, shape, num_classes=None) -> str:
    with pytest.raises(ModelSpecError) as info:
        build_model(model_spec, shape, num_classes)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, AelabError)
    return message


# ------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("encoder, expected", [([], 3_922), ([10], 16_526), ([32, 10], 51_726)])
def test_hidden_layer_article_parameter_counts(encoder, expected):
    model = build_model(spec(encoder=encoder, latent_dim=2), (1, 28, 28))
    assert count_parameters(model) == expected


@pytest.mark.parametrize("name, expected", [("mnist-hidden1", 3_922), ("mnist-hidden2", 16_526),
                                            ("mnist-hidden3", 51_726), ("digits-ae", 4_192)])
def test_shipped_configs_parameter_counts(name, expected):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    shape = (1, 8, 8) if cfg.data.name == "digits" else (1, 28, 28)
    assert count_parameters(build_model(cfg.model, shape)) == expected


def test_optimizer_lesson_parameter_count():
    model = build_model(spec(encoder=[], latent_dim=32, latent_activation="relu"), (1, 8, 8))
    assert count_parameters(model) == 64 * 32 + 32 + 32 * 64 + 64 == 4_192


def test_count_parameters_counts_every_tensor():
    assert count_parameters(nn.Linear(3, 4)) == 16
    assert count_parameters(nn.Sequential(nn.Conv2d(2, 5, 3), nn.BatchNorm2d(5))) == 2 * 5 * 9 + 5 + 10


# ------------------------------------------------------------- shapes


SHAPE_CASES = {
    "dense-28": ([32, 10], (1, 28, 28)),
    "dense-empty-8": ([], (1, 8, 8)),
    "conv-stride1-8": ([conv(4), conv(8)], (1, 8, 8)),
    "conv-same-28": ([conv(4, padding="same"), conv(2, 5, padding="same")], (1, 28, 28)),
    "conv-stride2-28": ([conv(8, stride=2, padding=1), conv(4, stride=2, padding=1)], (1, 28, 28)),
    "conv-stride2-7": ([conv(8, stride=2, padding=1), conv(4, stride=2, padding=1)], (1, 7, 7)),
    "conv-stride2-rgb-7x9": ([conv(6, stride=2, padding=1), conv(4, stride=2, padding=1)], (3, 7, 9)),
    "conv-stride3-10": ([conv(4, 4, stride=3)], (1, 10, 10)),
    "pool-conv-28": ([conv(8, padding="same"), {"type": "maxpool"}, conv(4, padding="same"),
                      {"type": "maxpool"}, 16], (1, 28, 28)),
    "pool-conv-8": ([conv(8, padding="same"), {"type": "maxpool"}, conv(4), {"type": "maxpool"}], (1, 8, 8)),
    "pool-odd-7": ([{"type": "maxpool"}, conv(2)], (1, 7, 7)),
    "batchnorm-dropout-conv": ([conv(8, padding="same"), {"type": "batchnorm"}, {"type": "maxpool"},
                                {"type": "dropout", "rate": 0.2}, conv(4), {"type": "batchnorm"}], (1, 8, 8)),
    "batchnorm-dropout-dense": ([64, {"type": "batchnorm"}, {"type": "dropout"}, 32], (1, 8, 8)),
    "flatten-reshape": ([{"type": "flatten"}, {"type": "reshape", "shape": [4, 4, 4]}, conv(2)], (1, 8, 8)),
    "conv-transpose-upsample": ([{"type": "conv-transpose2d", "filters": 3, "stride": 2},
                                 {"type": "upsample"}, conv(2, 5, stride=2)], (1, 5, 5)),
}


@pytest.mark.parametrize("case", SHAPE_CASES)
@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_mirrored_output_shape_equals_input_shape(case, kind):
    encoder, shape = SHAPE_CASES[case]
    model = build_model(spec(kind=kind, encoder=encoder, latent_dim=3), shape)
    assert isinstance(model, VAE if kind == "vae" else Autoencoder)
    for train in (False, True):  # train mode: batchnorm batch statistics, dropout, reparameterisation
        out = run(model, shape, batch=4, train=train)
        assert out["x_hat"].shape == (4, *shape)
        assert out["z"].shape == (4, 3)
        assert torch.isfinite(out["x_hat"]).all()


@pytest.mark.parametrize("size", [28, 7])
def test_stride2_conv_mirror_needs_output_padding(size):
    encoder = [conv(8, stride=2, padding=1), conv(4, stride=2, padding=1)]
    model = build_model(spec(encoder=encoder), (1, size, size))
    pads = [m.output_padding for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(pads) == 2
    assert any(p != (0, 0) for p in pads)  # 7 -> 4 -> 2 and 28 -> 14 -> 7 -> ... lose a pixel somewhere
    assert run(model, (1, size, size))["x_hat"].shape == (3, 1, size, size)


def test_sigmoid_output_stays_in_unit_interval():
    model = build_model(spec(encoder=[conv(4, stride=2, padding=1)]), (1, 9, 9))
    x_hat = run(model, (1, 9, 9))["x_hat"]
    assert (x_hat > 0).all() and (x_hat < 1).all()


def test_vae_forward_outputs():
    model = build_model(spec(kind="vae", encoder=[64, 32], latent_dim=5), (1, 8, 8))
    out = run(model, (1, 8, 8), batch=6, train=True)
    assert set(out) == {"x_hat", "z", "mu", "logvar"}
    assert out["x_hat"].shape == (6, 1, 8, 8)
    for key in ("z", "mu", "logvar"):
        assert out[key].shape == (6, 5)
    assert not torch.allclose(out["z"], out["mu"])  # sampled while training
    ev = run(model, (1, 8, 8), batch=6, train=False)
    assert torch.equal(ev["z"], ev["mu"])  # deterministic at evaluation
    x = torch.rand(6, 1, 8, 8)
    model.eval()
    assert torch.equal(model.embed(x), model.encode(x)[0])
    assert model.sample(7).shape == (7, 1, 8, 8)


def test_vae_sample_is_seeded_by_generator():
    model = build_model(spec(kind="vae", encoder=[16], latent_dim=2), (1, 8, 8)).eval()
    a = model.sample(4, torch.Generator().manual_seed(3))
    b = model.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("encoder, shape", [([32], (1, 8, 8)), ([conv(4), {"type": "maxpool"}], (1, 8, 8)),
                                            ([], (1, 28, 28))])
def test_classifier_logits(encoder, shape):
    model = build_model(spec(kind="classifier", encoder=encoder, num_classes=10), shape)
    assert isinstance(model, Classifier)
    out = run(model, shape, batch=5)
    assert set(out) == {"logits"} and out["logits"].shape == (5, 10)
    x = torch.rand(5, *shape)
    assert torch.allclose(model.predict_proba(x).sum(1), torch.ones(5))


def test_classifier_takes_num_classes_from_data():
    model = build_model(spec(kind="classifier", encoder=[16]), (1, 8, 8), num_classes=4)
    assert run(model, (1, 8, 8))["logits"].shape == (3, 4)


def test_classifier_spec_num_classes_wins_over_data():
    model = build_model(spec(kind="classifier", encoder=[16], num_classes=3), (1, 8, 8), num_classes=4)
    assert run(model, (1, 8, 8))["logits"].shape == (3, 3)


# ------------------------------------------------------------- mirror activations


def test_mirror_activations_relu_hidden_sigmoid_output():
    model = build_model(spec(encoder=[32, 10], activation="relu", output_activation="sigmoid"), (1, 28, 28))
    linears = [(m.in_features, m.out_features) for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    assert linears == [(2, 10), (10, 32), (32, 784)]
    assert activations(model.decoder) == [nn.ReLU, nn.ReLU, nn.Sigmoid]
    last = model.decoder[-1]
    # the last decoder module applies the sigmoid (before reshaping back to the image)
    leaves = [m for m in last.modules() if not list(m.children())]
    assert isinstance([m for m in leaves if not type(m).__name__ == "Reshape"][-1], nn.Sigmoid)
    assert activations(model.body) == [nn.ReLU, nn.ReLU]
    assert activations(model.to_latent) == []  # latent_activation linear by default


def test_mirror_carries_each_encoder_layers_own_activation():
    encoder = [{"type": "dense", "units": 32, "activation": "tanh"}, {"type": "dense", "units": 10}]
    model = build_model(spec(encoder=encoder, activation="elu", output_activation="sigmoid"), (1, 8, 8))
    assert activations(model.body) == [nn.Tanh, nn.ELU]
    assert activations(model.decoder) == [nn.ELU, nn.Tanh, nn.Sigmoid]


def test_mirror_conv_activations_skip_pooling():
    encoder = [conv(4, padding="same"), {"type": "maxpool"}, conv(2, padding="same")]
    model = build_model(spec(encoder=encoder, activation="relu", output_activation="sigmoid"), (1, 8, 8))
    assert activations(model.decoder) == [nn.ReLU, nn.ReLU, nn.Sigmoid]
    assert isinstance(model.decoder[-1], nn.Sequential)
    assert isinstance(model.decoder[-1][0], nn.ConvTranspose2d) and isinstance(model.decoder[-1][-1], nn.Sigmoid)


def test_linear_output_activation_adds_nothing():
    model = build_model(spec(encoder=[16], output_activation="linear"), (1, 8, 8))
    assert activations(model.decoder) == [nn.ReLU]


def test_latent_activation_applied():
    cfg = load_config(CONFIGS / "digits-ae.yaml")
    model = build_model(cfg.model, (1, 8, 8))
    assert activations(model.to_latent) == [nn.ReLU]
    assert activations(model.decoder) == [nn.Sigmoid]
    z = model.eval().encode(torch.randn(5, 1, 8, 8))
    assert z.shape == (5, 32) and (z >= 0).all()


# ------------------------------------------------------------- explicit decoders


def test_ga_paper_config_builds_and_maps_images_to_images():
    cfg = load_config(CONFIGS / "ga-conv-ae.yaml")
    model = build_model(cfg.model, (1, 28, 28))
    out = run(model, (1, 28, 28), batch=4)
    assert out["x_hat"].shape == (4, 1, 28, 28) and out["z"].shape == (4, 2)
    # sigmoid units throughout, the output included
    assert set(activations(model.decoder)) == {nn.Sigmoid}
    assert isinstance(model.decoder[-1][-1], nn.Sigmoid)
    assert (out["x_hat"] > 0).all() and (out["x_hat"] < 1).all()


def test_explicit_flat_decoder_is_reshaped_to_the_image():
    model = build_model(spec(encoder=[32], decoder=[32, 784]), (1, 28, 28))
    assert run(model, (1, 28, 28), batch=2)["x_hat"].shape == (2, 1, 28, 28)
    # hidden layer uses the model activation, the last parametric layer the output activation
    assert activations(model.decoder) == [nn.ReLU, nn.Sigmoid]


def test_explicit_decoder_respects_layer_activation_and_trailing_reshape():
    decoder = [{"type": "dense", "units": 16, "activation": "tanh"}, {"type": "dense", "units": 64},
               {"type": "reshape", "shape": [1, 8, 8]}]
    model = build_model(spec(decoder=decoder, output_activation="sigmoid"), (1, 8, 8))
    assert activations(model.decoder) == [nn.Tanh, nn.Sigmoid]
    assert run(model, (1, 8, 8))["x_hat"].shape == (3, 1, 8, 8)


def test_explicit_decoder_vae():
    model = build_model(spec(kind="vae", encoder=[32], decoder=[32, 64], latent_dim=4), (1, 8, 8))
    out = run(model, (1, 8, 8), train=True)
    assert out["x_hat"].shape == (3, 1, 8, 8) and out["mu"].shape == (3, 4)


# ------------------------------------------------------------- shape errors


def test_conv_stack_too_deep_for_8x8():
    msg = build_error(spec(encoder=[conv(4)] * 4), (1, 8, 8))
    assert "model.encoder[3] (conv2d)" in msg and "(4, 2, 2)" in msg and "kernel 3" in msg


def test_maxpool_on_too_small_input():
    msg = build_error(spec(encoder=[{"type": "maxpool"}] * 4), (1, 8, 8))
    assert "model.encoder[3] (maxpool)" in msg and "(1, 1, 1)" in msg and "size 2" in msg


def test_maxpool_larger_than_input():
    msg = build_error(spec(encoder=[{"type": "maxpool", "size": 9}]), (1, 8, 8))
    assert "model.encoder[0] (maxpool)" in msg and "(1, 8, 8)" in msg


def test_conv_on_flat_input():
    msg = build_error(spec(encoder=[{"type": "flatten"}, conv(4)]), (1, 8, 8))
    assert "model.encoder[1] (conv2d)" in msg and "(64)" in msg and "(C, H, W)" in msg


def test_conv_after_dense():
    msg = build_error(spec(encoder=[16, {"type": "maxpool"}]), (1, 8, 8))
    assert "model.encoder[1] (maxpool)" in msg and "(16)" in msg


def test_decoder_output_not_the_input_shape():
    msg = build_error(spec(decoder=[10, 100]), (1, 8, 8))
    assert "model.decoder" in msg and "(100)" in msg and "(1, 8, 8)" in msg


def test_conv_decoder_output_not_the_input_shape():
    decoder = [{"type": "dense", "units": 16}, {"type": "reshape", "shape": [1, 4, 4]}, {"type": "upsample"}]
    msg = build_error(spec(decoder=decoder), (1, 28, 28))
    assert "model.decoder" in msg and "(1, 8, 8)" in msg and "(1, 28, 28)" in msg


def test_decoder_layer_error_names_the_decoder_layer():
    decoder = [{"type": "dense", "units": 16}, conv(2)]
    msg = build_error(spec(decoder=decoder), (1, 8, 8))
    assert "model.decoder[1] (conv2d)" in msg and "(16)" in msg


def test_reshape_that_does_not_match():
    msg = build_error(spec(encoder=[{"type": "flatten"}, {"type": "reshape", "shape": [3, 32]}]), (1, 8, 8))
    assert "model.encoder[1] (reshape)" in msg and "reshape" in msg and "64 values" in msg and "96 values" in msg


def test_classifier_without_num_classes():
    msg = build_error(spec(kind="classifier", encoder=[16]), (1, 8, 8))
    assert "model.num_classes" in msg


def test_same_padding_with_even_kernel():
    msg = build_error(spec(encoder=[conv(2, kernel=4, padding="same")]), (1, 8, 8))
    assert "model.encoder[0] (conv2d)" in msg and "odd" in msg


def test_batchnorm_on_2d_shape():
    msg = build_error(spec(encoder=[{"type": "flatten"}, {"type": "reshape", "shape": [8, 8]},
                                    {"type": "batchnorm"}]), (1, 8, 8))
    assert "model.encoder[2] (batchnorm)" in msg and "(8, 8)" in msg


# ------------------------------------------------------------- output range warning


@pytest.mark.parametrize("act, value_range, warns", [
    ("sigmoid", (-1.5, 3.0), True),
    ("sigmoid", (0.0, 1.0), False),
    ("sigmoid", (0.0, 1.2), True),
    ("linear", (-1.5, 3.0), False),
    ("linear", (-1e9, 1e9), False),
    ("tanh", (0.1, 0.9), False),
    ("tanh", (-1.0, 1.0), False),
    ("tanh", (0.0, 2.0), True),
    ("relu", (-0.5, 1.0), True),
    ("relu", (0.0, 255.0), False),
])
def test_output_range_warning(act, value_range, warns):
    message = output_range_warning(spec(output_activation=act), value_range)
    if warns:
        assert isinstance(message, str) and act in message and "\n" not in message
    else:
        assert message is None


def test_output_range_warning_for_digits_lesson():
    cfg = load_config(CONFIGS / "digits-ae.yaml")
    message = output_range_warning(cfg.model, (-1.5, 3.0))
    assert message is not None and "sigmoid" in message and "model.output_activation" in message


def test_output_range_warning_ignores_classifiers():
    assert output_range_warning(spec(kind="classifier", num_classes=3), (-5.0, 5.0)) is None


# ------------------------------------------------------------- VAE maths


def test_kld_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(64, 5, generator=g) * 2
    logvar = torch.randn(64, 5, generator=g) * 1.5
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)),
                             Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    got = kld(mu, logvar)
    assert got.shape == (64,)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_kld_is_zero_at_the_prior_and_positive_elsewhere():
    assert torch.equal(kld(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))
    assert (kld(torch.full((3, 4), 0.1), torch.zeros(3, 4)) > 0).all()
    assert (kld(torch.zeros(3, 4), torch.full((3, 4), -0.5)) > 0).all()


def test_reparameterize_statistics():
    torch.manual_seed(1234)
    mu = torch.tensor([[0.5, -2.0, 3.0]])
    logvar = torch.tensor([[0.0, math.log(4.0), -2.0]])
    draws = VAE.reparameterize(mu.expand(200_000, 3), logvar.expand(200_000, 3))
    torch.testing.assert_close(draws.mean(0), mu[0], atol=0.02, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.exp(0.5 * logvar[0]), atol=0.02, rtol=0)


def test_reparameterize_is_differentiable():
    mu = torch.zeros(4, 2, requires_grad=True)
    logvar = torch.zeros(4, 2, requires_grad=True)
    VAE.reparameterize(mu, logvar).sum().backward()
    assert torch.equal(mu.grad, torch.ones(4, 2))
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0


# ------------------------------------------------------------- objectives


class Fixed(nn.Module):
    """A stand-in model returning fixed outputs, so objectives are checked in isolation."""

    def __init__(self, **outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, x):
        return self.outputs


def test_ae_objective_mse_equals_mse_loss():
    torch.manual_seed(0)
    model = build_model(spec(encoder=[16]), (1, 8, 8)).eval()
    x = torch.rand(10, 1, 8, 8)
    value, parts = ae_objective("mse")(model, x, None, 0)
    expected = F.mse_loss(model(x)["x_hat"], x)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(parts["recon"], expected)
    assert not parts["recon"].requires_grad and value.requires_grad


def test_ae_objective_mae_equals_l1_loss():
    x = torch.rand(4, 1, 3, 3)
    x_hat = torch.rand(4, 1, 3, 3)
    value, _ = ae_objective("mae")(Fixed(x_hat=x_hat), x, None, 0)
    torch.testing.assert_close(value, F.l1_loss(x_hat, x))


def test_bce_by_hand():
    x_hat = torch.tensor([[0.25, 0.5, 0.9]])
    x = torch.tensor([[1.0, 0.0, 0.2]])
    expected = -(torch.log(torch.tensor(0.25)) + torch.log(torch.tensor(0.5))
                 + (0.2 * math.log(0.9) + 0.8 * math.log(0.1))) / 3
    value, _ = ae_objective("bce")(Fixed(x_hat=x_hat), x, None, 0)
    torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-6)


def test_bce_matches_torch_inside_unit_interval():
    g = torch.Generator().manual_seed(0)
    x_hat = torch.rand(8, 10, generator=g).clamp(0.01, 0.99)
    x = torch.rand(8, 10, generator=g)
    torch.testing.assert_close(elementwise_loss("bce")(x_hat, x),
                               F.binary_cross_entropy(x_hat, x, reduction="none"), atol=1e-5, rtol=1e-5)


def test_bce_finite_for_targets_outside_unit_interval_and_saturated_outputs():
    x = torch.tensor([[-1.5, 3.0, 0.5, 2.0]])
    x_hat = torch.tensor([[0.0, 1.0, 0.3, 1.0]])
    elementwise = elementwise_loss("bce")(x_hat, x)
    assert torch.isfinite(elementwise).all()
    p = x_hat.clamp(1e-7, 1 - 1e-7)
    torch.testing.assert_close(elementwise, -(x * torch.log(p) + (1 - x) * torch.log(1 - p)),
                               atol=1e-4, rtol=1e-4)
    value, _ = ae_objective("bce")(Fixed(x_hat=x_hat), x, None, 0)
    assert torch.isfinite(value)


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("epoch, weight", [(0, 0.5), (1, 1.0), (3, 2.0), (10, 2.0)])
def test_vae_objective(loss, epoch, weight):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 4, 4, generator=g)
    x_hat = torch.rand(6, 1, 4, 4, generator=g).clamp(0.05, 0.95)
    mu = torch.randn(6, 3, generator=g)
    logvar = torch.randn(6, 3, generator=g) * 0.5
    model = Fixed(x_hat=x_hat, z=mu, mu=mu, logvar=logvar)
    value, parts = vae_objective(loss, beta=2.0, warmup=4)(model, x, None, epoch)
    if loss == "mse":
        per_pixel = (x_hat - x) ** 2
    else:
        per_pixel = -(x * torch.log(x_hat) + (1 - x) * torch.log(1 - x_hat))
    recon = per_pixel.reshape(6, -1).sum(1).mean()
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(parts["recon"], recon, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["kl"], kl, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, recon + weight * kl, atol=1e-5, rtol=1e-5)


def test_kl_weight_ramp():
    assert [kl_weight(2.0, 4, e) for e in range(5)] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0])
    assert [kl_weight(0.7, 0, e) for e in range(3)] == [0.7, 0.7, 0.7]
    assert kl_weight(1.0, 1, 0) == 1.0


def test_classifier_objective_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 5, generator=g)
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    value, parts = classifier_objective()(Fixed(logits=logits), torch.zeros(8, 1), y, 0)
    torch.testing.assert_close(value, F.cross_entropy(logits, y))
    assert parts["acc"].item() == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_make_objective_dispatch():
    cfg = load_config({"model": {"kind": "vae", "beta": 3.0, "kl_warmup": 2}, "train": {"loss": "mse"}})
    mu = torch.ones(2, 2)
    model = Fixed(x_hat=torch.zeros(2, 1, 2, 2), z=mu, mu=mu, logvar=torch.zeros(2, 2))
    x = torch.ones(2, 1, 2, 2)
    value, parts = make_objective(cfg.model, cfg.train)(model, x, None, 0)
    # recon: 4 pixels of error 1 -> 4; kl: 0.5 * sum(mu^2) = 1; weight 3 * 1/2
    assert parts["recon"].item() == pytest.approx(4.0) and parts["kl"].item() == pytest.approx(1.0)
    assert value.item() == pytest.approx(4.0 + 1.5)

    ae = load_config({"train": {"loss": "mae"}})
    value, _ = make_objective(ae.model, ae.train)(Fixed(x_hat=torch.zeros(2, 1, 2, 2)), x, None, 0)
    assert value.item() == pytest.approx(1.0)

    clf = load_config({"model": {"kind": "classifier", "num_classes": 2}})
    value, parts = make_objective(clf.model, clf.train)(Fixed(logits=torch.tensor([[5.0, 0.0]])),
                                                        x[:1], torch.tensor([0]), 0)
    assert "acc" in parts and value.item() == pytest.approx(F.cross_entropy(torch.tensor([[5.0, 0.0]]),
                                                                            torch.tensor([0])).item())


def test_gradients_reach_every_parameter():
    model = build_model(spec(kind="vae", encoder=[conv(4, stride=2, padding=1), 8], latent_dim=2), (1, 7, 7))
    model.train()
    value, _ = vae_objective("bce", 1.0, 0)(model, torch.rand(5, 1, 7, 7), None, 0)
    value.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


@pytest.mark.parametrize("name, shape, total", [
    ("digits-ae", (1, 8, 8), -4.649338982388144), ("mnist-hidden3", (1, 28, 28), 0.10818186524397788),
    ("ga-conv-ae", (1, 28, 28), -1.2583743018185487), ("mnist-vae", (1, 28, 28), 4.5847049638144135),
    ("lso-vae-latent5", (1, 14, 14), -5.16018321132583), ("mnist14-classifier", (1, 14, 14), 12.971644687026583),
])
def test_a_seed_builds_the_network_earlier_versions_built(name, shape, total):
    """The sum of every initial weight under ``train.seed``, as aelab at
    commit e9ac540 (before families were plug-ins) built it: the modules
    are made in the same order, so every shipped study's table still
    reproduces."""
    import torch
    from aelab.models.build import build_model
    from aelab.spec import load_config
    cfg = load_config(name)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, shape, 10)
    assert sum(float(p.detach().double().sum()) for p in model.parameters()) == pytest.approx(total, rel=1e-12)
