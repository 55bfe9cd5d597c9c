"""Samplers and ``aelab sample``: the fitted densities against numpy's and
scikit-learn's own fits, the prior against N(0, I) and the model's own
``sample``, the written files, repeatability, the plug-in point, and every
bad input as one line that leaves nothing behind.

Tiny runs on the embedded 8x8 digits (2 epochs each), trained once per module.
"""
from __future__ import annotations

import copy
import errno
import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture
from typer.testing import CliRunner

import aelab
from aelab import plugins, samplers
from aelab.cli import app
from aelab.models.family import family
from aelab.runs import load_model, load_run
from aelab.samplers.draw import training_codes
from conftest import TINY, TRAIN_BUDGET, one_line_error

MODELS = {"ae": {"kind": "ae", "encoder": [16], "latent_dim": 3},
          "vae": {"kind": "vae", "encoder": [16], "latent_dim": 3},
          "cvae": {"kind": "cvae", "encoder": [16], "latent_dim": 2},
          "gan": {"kind": "gan", "discriminator": [16], "latent_dim": 4},
          "classifier": {"kind": "classifier", "encoder": [16]}}
runner = CliRunner()


def config(name: str) -> dict:
    """TINY's data and a small model of the family, 2 epochs of its default method."""
    cfg = copy.deepcopy(TINY)
    cfg["model"] = copy.deepcopy(MODELS[name])
    method = family(cfg["model"]["kind"]).methods[0]
    cfg["train"] = {"method": method, "seed": 0, **TRAIN_BUDGET[method], "epochs": 2}
    return cfg


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampler-runs")
    for name in MODELS:
        aelab.train(config(name), out=root / name)
    unfinished = root / "unfinished"  # a run directory that has not trained yet
    unfinished.mkdir()
    shutil.copy(root / "ae" / "config.yaml", unfinished / "config.yaml")
    return {name: root / name for name in [*MODELS, "unfinished"]}


@pytest.fixture(scope="module")
def ae_codes(runs):
    run = load_run(runs["ae"])
    model = load_model(run.path)
    return model, training_codes(run, model)


def cli(*args):
    return runner.invoke(app, ["sample", *map(str, args)])


def npz(folder) -> dict:
    with np.load(folder / "samples.npz") as f:
        return {k: f[k] for k in f.files}


def spec(name: str, **options):
    return samplers.spec_class(name).model_validate({"sampler": name, **options})


# ------------------------------------------------------------ the registry


def test_the_registry_holds_the_four_samplers_and_their_needs():
    assert {"prior", "gaussian", "gmm", "expost"} <= set(samplers.names())
    assert samplers.sampler("expost").needs == {"decode", "embed"} and samplers.sampler("expost").fits_codes
    assert spec("expost").components == 10  # the paper's k (Ghosh et al. 2020, Sec. 4.1)
    assert samplers.sampler("prior").needs == {"decode", "generative"}
    assert samplers.sampler("gmm").needs == samplers.sampler("gaussian").needs == {"decode", "embed"}
    assert samplers.sampler("gmm").fits_codes and not samplers.sampler("prior").fits_codes
    assert spec("gmm").components == 10  # Pythae's default


DECODERS = [k for k in MODELS if family(MODELS[k]["kind"]).has("decode")]
PAIRS = [(s, r) for s in samplers.names() for r in DECODERS]


@pytest.mark.parametrize("name,run", PAIRS, ids=[f"{s}-{r}" for s, r in PAIRS])
def test_every_sampler_draws_repeatable_codes_on_every_run_it_can_serve(runs, name, run, tmp_path):
    """The sampler contract: on a run whose family has what it needs, it
    draws finite (n, latent_dim) float32 codes, the same for the same seed,
    and its facts are JSON; on any other run it is refused in one line."""
    impl, fam = samplers.sampler(name), family(MODELS[run]["kind"])
    if not impl.needs <= fam.capabilities:
        line = one_line_error(cli(runs[run], "--sampler", name, "--out", tmp_path / "o"))
        assert f"--sampler {name}: " in line and "use --sampler" in line
        return
    model = load_model(runs[run])
    codes = training_codes(load_run(runs[run]), model) if impl.fits_codes else None
    density = impl.fit(spec(name), model, codes, seed=0)
    z = density.draw(7, torch.Generator().manual_seed(1))
    assert z.shape == (7, model.latent_dim) == (7, density.dim) and z.dtype == torch.float32
    assert torch.isfinite(z).all()
    again = impl.fit(spec(name), model, codes, seed=0).draw(7, torch.Generator().manual_seed(1))
    assert torch.equal(z, again)
    json.dumps(density.facts())


# ------------------------------------------------------------ the oracles


def test_the_training_codes_are_the_training_split_embedded_in_eval_mode(runs, ae_codes):
    model, codes = ae_codes
    data = aelab.load_dataset(load_run(runs["ae"]).config.data)
    assert codes.shape == (len(data.x_train), 3)
    with torch.no_grad():
        np.testing.assert_allclose(codes, model.embed(torch.as_tensor(data.x_train)).numpy(), atol=1e-6)


def test_the_gaussian_is_numpys_mean_and_covariance_of_the_codes(ae_codes):
    model, codes = ae_codes
    fitted = samplers.sampler("gaussian").fit(spec("gaussian"), model, codes, seed=0).distribution
    np.testing.assert_allclose(fitted.mean.numpy(), codes.mean(0), atol=1e-5)
    np.testing.assert_allclose(fitted.covariance.numpy(), np.cov(codes.T), atol=1e-5, rtol=1e-4)


def test_draws_of_the_gaussian_reproduce_its_mean_and_covariance(ae_codes):
    """Within five standard errors: sigma_i / sqrt(N) for a mean, and
    sqrt((s_ii s_jj + s_ij^2) / N) for a covariance entry."""
    model, codes = ae_codes
    density = samplers.sampler("gaussian").fit(spec("gaussian"), model, codes, seed=0)
    n = 200_000
    z = density.draw(n, torch.Generator().manual_seed(1)).numpy().astype(np.float64)
    cov = np.cov(codes.T)
    var = np.diag(cov)
    assert np.all(np.abs(z.mean(0) - codes.mean(0)) < 5 * np.sqrt(var / n))
    se = np.sqrt((np.outer(var, var) + cov ** 2) / n)
    assert np.all(np.abs(np.cov(z.T) - cov) < 5 * se)


def test_the_gmm_is_sklearns_gaussian_mixture_with_the_same_seed(ae_codes):
    model, codes = ae_codes
    mixture = samplers.sampler("gmm").fit(spec("gmm", components=4), model, codes, seed=7).distribution
    oracle = GaussianMixture(n_components=4, covariance_type="full", random_state=7).fit(codes.astype(np.float64))
    np.testing.assert_allclose(mixture.means.numpy(), oracle.means_, atol=1e-5)
    np.testing.assert_allclose(mixture.weights.numpy(), oracle.weights_, atol=1e-6)
    np.testing.assert_allclose(mixture.covariances.numpy(), oracle.covariances_, atol=1e-5, rtol=1e-4)
    z = mixture.sample(100_000, torch.Generator().manual_seed(0)).numpy()
    mean = (oracle.weights_[:, None] * oracle.means_).sum(0)  # the mixture's mean
    np.testing.assert_allclose(z.mean(0), mean, atol=0.02 * codes.std(0).max())


def test_the_expost_density_is_sklearns_mixture_with_the_papers_em_settings(ae_codes):
    """The paper's ex-post GMM: full covariances, up to 2,000 EM iterations
    (the authors' code), the seed as random_state; the gmm sampler is the
    same mixture with scikit-learn's default of 100 iterations."""
    model, codes = ae_codes
    density = samplers.sampler("expost").fit(spec("expost", components=4), model, codes, seed=7)
    oracle = GaussianMixture(n_components=4, covariance_type="full", max_iter=2000, tol=1e-3,
                             random_state=7).fit(codes.astype(np.float64))
    mixture = density.distribution
    np.testing.assert_allclose(mixture.means.numpy(), oracle.means_, atol=1e-5)
    np.testing.assert_allclose(mixture.weights.numpy(), oracle.weights_, atol=1e-6)
    np.testing.assert_allclose(mixture.covariances.numpy(), oracle.covariances_, atol=1e-5, rtol=1e-4)
    assert density.facts()["iterations"] == oracle.n_iter_ and density.facts()["components"] == 4
    with pytest.raises(samplers.SamplerError, match=r"--components 5000: more components than the"):
        samplers.sampler("expost").fit(spec("expost", components=5000), model, codes, seed=0)


def test_a_model_with_its_own_prior_is_drawn_from_its_prior_codes(runs):
    """The prior sampler asks the model for ``prior_codes`` where it has
    them (the VampPrior), and draws them with the generator it is given."""
    model = load_model(runs["vae"])
    calls = []

    def prior_codes(n, generator=None):
        calls.append(n)
        return 3.0 + torch.randn(n, model.latent_dim, generator=generator)
    model.prior_codes = prior_codes
    model.prior_description = lambda: "three plus N(0, I)"
    density = samplers.sampler("prior").fit(spec("prior"), model, None, seed=0)
    z = density.draw(5, torch.Generator().manual_seed(2))
    assert calls == [5] and density.dim == 3
    assert torch.equal(z, 3.0 + torch.randn(5, 3, generator=torch.Generator().manual_seed(2)))
    assert density.facts() == {"distribution": "three plus N(0, I)", "dim": 3}


def test_the_prior_of_a_vae_is_the_standard_normal_its_sample_draws(runs):
    model = load_model(runs["vae"])
    density = samplers.sampler("prior").fit(spec("prior"), model, None, seed=0)
    z = density.draw(100_000, torch.Generator().manual_seed(3)).numpy()
    assert z.shape == (100_000, 3)
    np.testing.assert_allclose(z.mean(0), 0, atol=0.02)
    np.testing.assert_allclose(z.var(0), 1, atol=0.02)
    codes = density.draw(16, torch.Generator().manual_seed(5))
    with torch.no_grad():
        np.testing.assert_array_equal(model.decode(codes).numpy(),
                                      model.sample(16, generator=torch.Generator().manual_seed(5)).numpy())


# ------------------------------------------------------------ end to end


def test_the_cli_writes_samples_a_grid_and_what_was_fitted(runs, tmp_path):
    out = tmp_path / "s"
    r = cli(runs["vae"], "--sampler", "gmm", "--n", 10, "--components", 3, "--seed", 4, "--out", out)
    assert r.exit_code == 0, r.output + r.stderr
    assert str(out) in r.stdout and "10 samples from the gmm sampler fitted to" in r.stdout
    assert {p.name for p in out.iterdir()} == {"samples.npz", "grid.png", "sampler.json"}
    f = npz(out)
    assert f["images"].shape == (10, 1, 8, 8) and f["images"].dtype == np.float32
    assert f["codes"].shape == (10, 3) and f["codes"].dtype == np.float32
    assert "classes" not in f and str(f["sampler"]) == "gmm" and json.loads(str(f["options"])) == {"components": 3}
    with torch.no_grad():  # the images are the decoded codes
        np.testing.assert_allclose(f["images"], load_model(runs["vae"]).decode(torch.as_tensor(f["codes"])).numpy())
    info = json.loads((out / "sampler.json").read_text())
    assert info["sampler"] == "gmm" and info["options"] == {"components": 3} and info["seed"] == 4
    assert info["n"] == 10 and info["source"] == str(runs["vae"]) and info["latent_dim"] == 3
    fitted = info["fitted"]
    assert fitted["means_shape"] == [3, 3] and fitted["weights_shape"] == [3] and fitted["covariances_shape"] == [3, 3, 3]
    assert fitted["training_codes"] == len(aelab.load_dataset(load_run(runs["vae"]).config.data).x_train)
    assert (out / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_seed_gives_the_same_samples(runs, tmp_path):
    for name in ("a", "b", "c"):
        seed = 1 if name == "c" else 0
        assert cli(runs["ae"], "--sampler", "gmm", "--n", 12, "--seed", seed, "--out", tmp_path / name).exit_code == 0
    a, b, c = (npz(tmp_path / name) for name in "abc")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["codes"], c["codes"])


def test_the_default_folder_is_per_sampler_and_is_never_overwritten(runs, tmp_path):
    run = tmp_path / "ae"
    shutil.copytree(runs["ae"], run)
    assert cli(run, "--sampler", "gaussian", "--n", 4).exit_code == 0
    assert npz(run / "samples-gaussian")["codes"].shape == (4, 3)
    before = (run / "samples-gaussian" / "samples.npz").read_bytes()
    line = one_line_error(cli(run, "--sampler", "gaussian", "--n", 8))
    assert f"--out {run / 'samples-gaussian'}: already holds samples" in line and "choose another --out" in line
    assert (run / "samples-gaussian" / "samples.npz").read_bytes() == before
    assert cli(run, "--sampler", "gmm", "--n", 4).exit_code == 0  # another sampler: its own folder
    assert {p.name for p in run.iterdir() if p.name.startswith("samples-")} == {"samples-gaussian", "samples-gmm"}


def test_without_sampler_a_generative_model_draws_its_prior_and_an_autoencoder_a_gaussian(runs, tmp_path):
    assert aelab.sample(runs["gan"], n=3, out=tmp_path / "g")["sampler"] == "prior"
    assert aelab.sample(runs["ae"], n=3, out=tmp_path / "a")["sampler"] == "gaussian"


def test_a_gan_samples_from_its_prior(runs, tmp_path):
    s = aelab.sample(runs["gan"], "prior", n=6, out=tmp_path / "g", seed=2)
    assert s["path"] == str(tmp_path / "g") and s["fitted"] == {"distribution": "N(0, I)", "dim": 4}
    model = load_model(runs["gan"])
    with torch.no_grad():
        expected = model.sample(6, generator=torch.Generator().manual_seed(2)).numpy()
    np.testing.assert_array_equal(npz(tmp_path / "g")["images"], expected)


def test_a_conditional_model_draws_the_classes_in_turn_or_those_asked_for(runs, tmp_path):
    model = load_model(runs["cvae"])
    aelab.sample(runs["cvae"], "prior", n=12, out=tmp_path / "all", seed=1)
    f = npz(tmp_path / "all")
    np.testing.assert_array_equal(f["classes"], np.arange(12) % 10)
    with torch.no_grad():  # as the model's own sample(n) draws them
        expected = model.sample(12, generator=torch.Generator().manual_seed(1)).numpy()
    np.testing.assert_array_equal(f["images"], expected)
    r = cli(runs["cvae"], "--sampler", "gmm", "--components", 2, "--n", 5, "--classes", "3,5", "--out", tmp_path / "35")
    assert r.exit_code == 0, r.output + r.stderr
    f = npz(tmp_path / "35")
    np.testing.assert_array_equal(f["classes"], [3, 5, 3, 5, 3])
    with torch.no_grad():
        decoded = model.decode(torch.as_tensor(f["codes"]), torch.as_tensor(f["classes"])).numpy()
    np.testing.assert_allclose(f["images"], decoded)
    assert json.loads((tmp_path / "35" / "sampler.json").read_text())["classes"] == [3, 5]


# ------------------------------------------------------------ bad input

BAD = [  # (run, arguments, what the line says)
    ("nothing", ["--sampler", "prior"], "no such run directory"),
    ("unfinished", ["--sampler", "gmm"], "has no trained model yet (model.json missing)"),
    ("classifier", ["--sampler", "gmm"], "is a 'classifier' run, which does not decode"),
    ("gan", ["--sampler", "gaussian"], "is a 'gan' run, which has no encoder"),
    ("gan", ["--sampler", "gmm"], "has no encoder (the gmm sampler is fitted to the training codes); "
                                  "use --sampler prior"),
    ("ae", ["--sampler", "prior"], "is a 'ae' run, which has no prior to draw from (it is not generative); "
                                   "use --sampler expost or gaussian or gmm"),
    ("vae", ["--n", "0"], "--n 0: expected at least 1 sample"),
    ("vae", ["--sampler", "gmm", "--components", "0"], "--components 0: expected at least 1"),
    ("vae", ["--sampler", "gmm", "--components", "5000"], "--components 5000: more components than the"),
    ("vae", ["--sampler", "vamp"], "--sampler vamp: unknown sampler (known: expost, gaussian, gmm, prior"),
    ("vae", ["--sampler", "gaussian", "--components", "3"], "--components: --sampler gaussian has no such option"),
    ("ae", ["--classes", "3"], "--classes: "),
    ("cvae", ["--classes", "12"], "--classes 12: expected class indices from 0 to 9"),
    ("cvae", ["--classes", "a,b"], "--classes a,b: expected class indices"),
]


@pytest.mark.parametrize("run,args,says", BAD, ids=[f"{r}:{' '.join(a)}" for r, a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path, run, args, says):
    where = runs.get(run, tmp_path / run)
    before = sorted(p.name for p in where.iterdir()) if where.exists() else None
    line = one_line_error(cli(where, *args, "--out", tmp_path / "out"))
    assert says in line, line
    assert not (tmp_path / "out").exists()
    assert (sorted(p.name for p in where.iterdir()) if where.exists() else None) == before
    line = one_line_error(cli(where, *args))  # the default folder inside the run is not made either
    assert says in line, line
    assert (sorted(p.name for p in where.iterdir()) if where.exists() else None) == before


@pytest.mark.parametrize("args", [["--n", "0"], ["--sampler", "gmm", "--components", "0"], ["--sampler", "vamp"]])
def test_a_mistake_in_the_numbers_or_the_sampler_answers_without_loading_torch(runs, args):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; sys.argv[0] = 'aelab'; from aelab.__main__ import main; main()",
                           "sample", str(runs["vae"]), *args], capture_output=True, text=True, timeout=120)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert proc.returncode == 2 and "error: --" in proc.stderr
    assert not {"torch", "numpy", "sklearn", "matplotlib"} & imported


def test_a_failure_while_writing_leaves_nothing_behind(runs, tmp_path, monkeypatch):
    import aelab.samplers.outputs as outputs

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(outputs, "save_grid", full)
    line = one_line_error(cli(runs["vae"], "--sampler", "gaussian", "--n", 4, "--out", tmp_path / "out"))
    assert "No space left on device" in line
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------ the plug-in point

PLUGIN = '''
from typing import Literal
import torch
from aelab.samplers import Sampler, SamplerSpec

class MeanSpec(SamplerSpec):
    sampler: Literal["mean"] = "mean"

class Mean:
    dim = 0
    def __init__(self, mean): self.mean, self.dim = mean, len(mean)
    def draw(self, n, generator): return self.mean.repeat(n, 1)
    def facts(self): return {"dim": self.dim}

class MeanSampler(Sampler):
    name, needs, fits_codes = "mean", frozenset({"decode", "embed"}), True
    def fit(self, spec, model, codes, seed): return Mean(torch.as_tensor(codes).mean(0))

SPEC, SAMPLER = MeanSpec, MeanSampler()
'''


def test_another_package_adds_a_sampler_through_an_entry_point(runs, tmp_path, monkeypatch):
    (tmp_path / "mean_sampler_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = plugins._entry_points
    monkeypatch.setattr(plugins, "_entry_points", lambda group: [SimpleNamespace(value="mean_sampler_plugin")]
                        if group == "aelab.samplers" else found(group))
    samplers.REGISTRY.__dict__.pop("modules", None)  # forget the cached lookup, before and after
    try:
        assert "mean" in samplers.names()
        s = aelab.sample(runs["ae"], "mean", n=3, out=tmp_path / "m")
        codes = npz(tmp_path / "m")["codes"]
        np.testing.assert_allclose(codes, np.repeat(codes[:1], 3, axis=0))
        assert s["fitted"] == {"dim": 3}
    finally:
        samplers.REGISTRY.__dict__.pop("modules", None)
        samplers.REGISTRY._loaded.pop("mean", None)
        sys.modules.pop("mean_sampler_plugin", None)
