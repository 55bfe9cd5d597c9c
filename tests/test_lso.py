"""Latent-space optimization (``aelab.lso``, ``aelab lso``, ``aelab lso-study``).

Tiny runs on the embedded 8x8 digits are trained once per module (a few
epochs each): an AE, a VAE, a classifier and a judge of another
architecture and seed.  Optimizer steps are checked against hand-computed
values and torch's Adam; the batched loop against one-row-at-a-time runs.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import scipy.linalg
import torch
import yaml
from scipy.spatial.distance import pdist
from typer.testing import CliRunner

import aelab
from aelab import lso
from aelab.cli import app
from conftest import one_line_error
from aelab.errors import AelabError
from aelab.lso import quality
from aelab.lso.loop import classifier_error
from aelab.lso.study import load_study, run_lso_study

DATA = {"name": "digits", "normalize": "unit", "test_size": 0.25, "seed": 0}
EVAL = {"max_samples": 100, "figures": False}
CONFIGS = {
    "ae": {"data": DATA, "eval": EVAL, "model": {"kind": "ae", "encoder": [32], "latent_dim": 3},
           "train": {"lr": 0.01, "epochs": 5, "batch_size": 64, "seed": 0}},
    "vae": {"data": DATA, "eval": EVAL, "model": {"kind": "vae", "encoder": [32], "latent_dim": 3},
            "train": {"lr": 0.01, "epochs": 5, "batch_size": 64, "loss": "bce", "seed": 0}},
    "clf": {"data": DATA, "eval": EVAL, "model": {"kind": "classifier", "encoder": [32]},
            "train": {"lr": 0.01, "epochs": 5, "batch_size": 64, "seed": 0}},
    "judge": {"data": DATA, "eval": EVAL, "model": {"kind": "classifier", "encoder": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": "same"}, {"type": "flatten"}, 16]},
        "train": {"lr": 0.01, "epochs": 5, "batch_size": 64, "seed": 3}},
    "clf6": {"data": {**DATA, "resize": [6, 6]}, "eval": EVAL, "model": {"kind": "classifier", "encoder": [8]},
             "train": {"epochs": 1, "seed": 0}},
}
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lso-runs")
    for name, cfg in CONFIGS.items():
        aelab.train(copy.deepcopy(cfg), out=root / name)
    return {name: root / name for name in CONFIGS}


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


# ------------------------------------------------------------ a toy model

class Linear2Class(torch.nn.Module):
    """A 'classifier' with logits = z W (identity generator): known gradients."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[2.0, -1.0, 0.0], [0.0, 1.0, -1.5]]))

    def forward(self, x):
        return {"logits": x.reshape(len(x), -1) @ self.w}


def toy_model() -> lso.LatentClassifier:
    return lso.compose(lso.PixelSpace((2,)), Linear2Class(), (2,))


class FixedStarts:
    """Hands out given rows in order (then repeats the last)."""

    def __init__(self, rows):
        self.rows, self.used = torch.as_tensor(rows, dtype=torch.float32), 0

    def sample(self, n, gen):
        idx = torch.clamp(torch.arange(self.used, self.used + n), max=len(self.rows) - 1)
        self.used += n
        return self.rows[idx].clone()


# ------------------------------------------------------------ optimizers

def test_normalized_step_matches_hand_computed_oracle():
    # D = (3, 4): S = 9 + 16 = 25; E = 0.2, rate 0.5 -> C = -0.1; step = D * C / S
    opt = lso.NormalizedStep(rate=0.5)
    z, g, e = torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([0.2])
    new = opt.step(torch.arange(1), z, g, e)
    assert torch.allclose(new, torch.tensor([[1.0 - 0.012, 1.0 - 0.016]]))
    # a zero gradient (S = 0) leaves the point where it is
    assert torch.equal(opt.step(torch.arange(1), z, torch.zeros(1, 2), e), z)
    # a capped step keeps its direction and has length max_step
    capped = lso.NormalizedStep(rate=0.5, max_step=0.01).step(torch.arange(1), z, g, e)
    assert torch.allclose((capped - z).norm(), torch.tensor(0.01))
    assert torch.allclose((capped - z) / 0.01, -g / 5)


def test_normalized_step_changes_a_linear_error_by_exactly_c():
    # f(z) = a.z is linear, so the first-order change C is the exact change
    a = torch.tensor([[0.5, -2.0, 1.5]])
    z = torch.tensor([[0.3, 0.1, -0.4]])
    e = (a * z).sum(1)
    new = lso.NormalizedStep(rate=0.25).step(torch.arange(1), z, a, e)
    assert torch.allclose((a * new).sum(1) - e, -0.25 * e)


def test_adam_matches_torch_and_reset_restarts_a_row():
    torch.manual_seed(0)
    grads = torch.randn(6, 2, 3)
    ours, z = lso.Adam(lr=0.1), torch.zeros(2, 3)
    ours.init(2, 3)
    ref = torch.zeros(1, 3, requires_grad=True)
    torch_adam = torch.optim.Adam([ref], lr=0.1)
    for g in grads:
        z = ours.step(torch.arange(2), z, g, None)
        ref.grad = g[:1].clone()
        torch_adam.step()
    assert torch.allclose(z[:1], ref.detach(), atol=1e-6)
    # after reset, row 1 takes the same first step as a brand-new optimizer
    ours.reset(torch.tensor([1]))
    fresh = lso.Adam(lr=0.1)
    fresh.init(1, 3)
    g = torch.randn(1, 3)
    step = ours.step(torch.tensor([1]), z[1:], g, None)
    assert torch.allclose(step, fresh.step(torch.arange(1), z[1:], g, None))


def test_sgd_momentum_by_hand():
    opt = lso.SGD(lr=0.1, momentum=0.9)
    opt.init(1, 1)
    z = opt.step(torch.arange(1), torch.zeros(1, 1), torch.ones(1, 1), None)   # v = 1
    z = opt.step(torch.arange(1), z, torch.ones(1, 1), None)                   # v = 1.9
    assert torch.allclose(z, torch.tensor([[-0.1 - 0.19]]))


def test_unknown_optimizer_is_one_line():
    with pytest.raises(lso.LSOError, match="--optimizer rmsprop: unknown"):
        lso.make_optimizer("rmsprop")


# ------------------------------------------------------------ the loop

def test_lso_steps_yields_the_start_then_descends():
    model = toy_model()
    start = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    targets = torch.tensor([0.0, 0.0, 1.0])
    states = list(lso.lso_steps(model, start, targets, lso.Adam(lr=0.1), steps=30))
    assert [s.step for s in states] == list(range(31))
    assert torch.equal(states[0].latents, start)
    first, last = states[0], states[-1]
    assert first.probs.shape == (2, 3) and first.error.shape == (2,) and first.images.shape == (2, 2)
    assert torch.allclose(first.error, classifier_error(model.probs(start), targets.expand(2, -1)))
    assert (last.error < first.error).all()


@pytest.mark.parametrize("make", [lambda: lso.NormalizedStep(0.5), lambda: lso.Adam(0.05),
                                  lambda: lso.SGD(5.0, 0.5)], ids=["normalized", "adam", "sgd"])
def test_a_batch_follows_the_same_paths_as_rows_alone(runs, make):
    # float64, so that the batched and the single-row matrix products round
    # alike (in float32 the normalized step amplifies 1e-7 differences)
    setup = lso.prepare(runs["clf"], runs["vae"], lso.LSOOptions(shell=True, prior_penalty=0.01))
    model = setup.model.double()
    z0 = setup.start.sample(5, torch.Generator().manual_seed(1)).double()
    targets = torch.as_tensor(np.eye(10)[[0, 3, 3, 7, 9]])
    run = lambda z, t: list(lso.lso_steps(model, z, t, make(), setup.regularizer, steps=15))[-1]
    batched = run(z0, targets)
    assert batched.latents.dtype == torch.float64
    moved = (batched.latents - setup.regularizer.project(z0)).norm(dim=1)
    assert (moved > 1e-3).all()
    for i in range(5):
        alone = run(z0[i:i + 1], targets[i:i + 1])
        assert torch.allclose(batched.latents[i], alone.latents[0], atol=1e-9)
        assert torch.allclose(batched.error[i], alone.error[0], atol=1e-12)


def test_failed_restarts_are_replaced_until_success_or_budget():
    model = toy_model()
    # a start at a plateau (z far out, gradient ~0 under the normalized step's
    # rate) cannot reach the target in 0 steps; the good start already meets it
    good = torch.tensor([[0.0, -60.0]])          # logits (0, -60, 90): class 2 with p ~ 1
    bad = torch.tensor([[40.0, 0.0]])            # class 0 with p ~ 1
    targets = np.eye(3)[[2, 2]]
    starts = FixedStarts(torch.cat([bad, bad, bad, good, bad, bad]))
    res = lso.optimize(model, targets, starts, lso.NormalizedStep(0.5), threshold=1e-3, steps=0,
                       restarts=3, parallel=1)
    # starts go out in row order: both samples start bad; the replacements are
    # bad (sample 0) and good (sample 1); sample 0's third start is bad again
    assert res.restarts.tolist() == [3, 2]
    assert res.success.tolist() == [False, True]
    assert res.steps.tolist() == [0, 0] and res.total_steps.tolist() == [0, 0]
    assert res.restart_successes == 1 and res.restart_failures == 2 + 1 + 1
    assert torch.allclose(torch.as_tensor(res.start_latents[1]), good[0])
    assert res.error[1] <= 1e-3 < res.error[0]


def test_success_accounting_on_real_runs(runs):
    setup = lso.prepare(runs["clf"], runs["vae"], lso.LSOOptions(optimizer="adam", lr=0.1, steps=40,
                                                                 restarts=4, parallel=2, shell=True, threads=2))
    targets, names = lso.target_matrix(["1", "7"], 10, 6)
    before = torch.get_num_threads()
    res = lso.generate(setup, targets)
    assert torch.get_num_threads() == before  # generate's thread setting is temporary
    assert names == ["1", "7"] and res.images.shape == (12, 1, 8, 8) and res.latents.shape == (12, 3)
    assert np.array_equal(res.success, res.error <= 1e-3)
    assert (res.restarts >= 2).all() and (res.restarts <= 4).all()
    assert (res.steps <= 40).all() and (res.total_steps >= res.steps).all()
    failed = ~res.success
    assert (res.restarts[failed] == 4).all() and (res.steps[failed] == 40).all()
    assert res.success_rate == pytest.approx(res.success.mean())
    # the returned images are the decoder's output at the returned latents
    with torch.no_grad():
        images = setup.model.images(torch.as_tensor(res.latents))
        probs = setup.model.probs(torch.as_tensor(res.latents))
    assert np.allclose(images.numpy(), res.images, atol=1e-5)
    err = classifier_error(probs, torch.as_tensor(res.targets)).numpy()
    assert np.allclose(err, res.error, atol=1e-6)


def test_shell_and_box_projections(runs):
    gauss = lso.Gaussian.standard(4)
    z = torch.tensor([[3.0, 0.0, 0.0, 4.0]])
    assert torch.allclose(lso.Shell(gauss).project(z).norm(), torch.tensor(2.0))  # sqrt(d) = 2
    codes = np.random.default_rng(0).normal(size=(1000, 2))
    box = lso.Box.from_codes(codes, 5.0)
    lo, hi = np.percentile(codes, [5, 95], axis=0)
    assert np.allclose(box.project(torch.tensor([[-9.0, 9.0]])).numpy(), [[lo[0], hi[1]]], atol=1e-6)
    penalty = lso.PriorPenalty(gauss, 2.0).penalty(z)
    assert torch.allclose(penalty, torch.tensor([2.0 * 0.5 * 25 / 4]))


# ------------------------------------------------------------ targets and bad input

def test_targets_one_hot_and_probability_vectors():
    assert lso.parse_target("3", 10).tolist() == np.eye(10)[3].tolist()
    mix = lso.parse_target("0,0,0,0.5,0,0,0,0,0.5,0", 10)
    assert mix[3] == mix[8] == 0.5
    t, names = lso.target_matrix(["3", "0,0,0,0.5,0,0,0,0,0.5,0"], 10, 2)
    assert t.shape == (4, 10) and names == ["3", "3:0.5+8:0.5"]


@pytest.mark.parametrize("text, message", [
    ("0.5,0.5", "has 2 entries, expected 10"),
    ("0,0,0,0.5,0,0,0,0,0.4,0", "sums to 0.9, expected a probability vector summing to 1"),
    ("12", "class index out of range"),
    ("three", "expected a class index or comma-separated probabilities"),
    ("1,0,0,0,0,0,0,0,0,-0", None),
])
def test_bad_targets(text, message):
    if message is None:  # -0 is fine
        assert lso.parse_target(text, 10)[0] == 1
        return
    with pytest.raises(lso.LSOError, match=message):
        lso.parse_target(text, 10)


def test_cli_bad_target_is_one_line(runs, tmp_path):
    line = one_line_error(cli("lso", "--classifier", runs["clf"], "--decoder", runs["ae"],
                              "--target", "0,1", "--out", tmp_path / "o"))
    assert "--target 0,1: has 2 entries, expected 10" in line
    line = one_line_error(cli("lso", "--classifier", runs["clf"], "--decoder", runs["ae"],
                              "--target", "0,0,0,0.5,0,0,0,0,0.6,0", "--out", tmp_path / "o"))
    assert "sums to 1.1" in line
    assert not (tmp_path / "o").exists()


def test_decoder_and_classifier_shapes_must_match(runs, tmp_path):
    line = one_line_error(cli("lso", "--classifier", runs["clf6"], "--decoder", runs["ae"], "--target", "1",
                              "--out", tmp_path / "o"))
    assert f"--decoder {runs['ae']} outputs 1x8x8 images" in line
    assert f"--classifier {runs['clf6']} takes 1x6x6 inputs" in line
    assert not (tmp_path / "o").exists()


def test_a_non_classifier_run_is_refused(runs, tmp_path):
    line = one_line_error(cli("lso", "--classifier", runs["ae"], "--decoder", runs["vae"], "--target", "1",
                              "--out", tmp_path / "o"))
    assert f"--classifier {runs['ae']}: is a 'ae' run, expected a classifier" in line
    line = one_line_error(cli("lso", "--classifier", runs["clf"], "--decoder", runs["judge"], "--target", "1",
                              "--out", tmp_path / "o"))
    assert "expected a model that decodes a latent code" in line
    line = one_line_error(cli("lso", "--classifier", runs["clf"], "--decoder", runs["ae"], "--target", "1",
                              "--evaluate", "--judge", runs["vae"], "--out", tmp_path / "o"))
    assert f"--judge {runs['vae']}: is a 'vae' run, expected a classifier" in line
    line = one_line_error(cli("lso", "--classifier", runs["clf"], "--target", "1", "--out", tmp_path / "o"))
    assert "--decoder: required" in line
    line = one_line_error(cli("lso", "--classifier", tmp_path / "nothing", "--decoder", runs["ae"],
                              "--target", "1", "--out", tmp_path / "o"))
    assert "no such run directory" in line
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------ outputs and the CLI

def test_cli_writes_every_output(runs, tmp_path):
    out = tmp_path / "lso"
    r = cli("lso", "--classifier", runs["clf"], "--decoder", runs["vae"], "--target", "3",
            "--target", "0,0,0,0.5,0,0,0,0,0.5,0", "--n", "3", "--optimizer", "adam", "--lr", "0.1",
            "--shell", "--steps", "30", "--restarts", "3", "--parallel", "2", "--evaluate", "--judge", runs["judge"],
            "--out", out)
    assert r.exit_code == 0, r.output + r.stderr
    assert {p.name for p in out.iterdir()} == {"samples.npz", "summary.json", "grid.png", "walk.png"}
    with np.load(out / "samples.npz") as f:
        assert {"images", "targets", "success", "steps", "latents"} <= set(f.files)
        assert f["images"].shape == (6, 1, 8, 8) and f["latents"].shape == (6, 3) and f["targets"].shape == (6, 10)
        success = f["success"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["targets"] == ["3", "3:0.5+8:0.5"] and summary["samples"] == 6
    assert summary["success_rate"] == pytest.approx(success.mean())
    table = summary["evaluation"]["table"]
    assert [row["target"] for row in table] == ["3", "3:0.5+8:0.5", "all"]
    assert summary["evaluation"]["fid"] >= 0 and summary["evaluation"]["fid_real_floor"] >= 0
    assert "judge acc." in r.output and "fid" in r.output


def test_pixel_space_baseline(runs, tmp_path):
    out = tmp_path / "pix"
    summary = lso.run_lso(runs["clf"], ["4"], decoder=runs["ae"], n=4, out=out,
                          options=lso.LSOOptions(space="pixels", start="gaussian", max_step=1.0, steps=50),
                          judge=runs["judge"], evaluate_samples=True)
    with np.load(out / "samples.npz") as f:
        assert f["latents"].shape == (4, 64) and np.allclose(f["latents"], f["images"].reshape(4, 64))
    assert summary["options"]["space"] == "pixels"
    assert np.isfinite(summary["evaluation"]["table"][-1]["recon_error"])  # scored by --decoder's AE


# ------------------------------------------------------------ quality measures

def test_frechet_distance_matches_the_scipy_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(loc=0.5, size=(300, 5))
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    oracle = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert quality.frechet_distance(a, b) == pytest.approx(oracle, rel=1e-8)
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # 1-D closed form: (mu1 - mu2)^2 + (s1 - s2)^2
    x, y = rng.normal(1, 2, size=(1000, 1)), rng.normal(-1, 0.5, size=(800, 1))
    closed = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert quality.frechet_distance(x, y) == pytest.approx(closed, rel=1e-8)
    assert lso.frechet_distance is quality.frechet_distance


def test_diversity_nearest_and_judge_verdicts():
    rng = np.random.default_rng(1)
    x, ref = rng.random((6, 1, 3, 3)), rng.random((20, 1, 3, 3))
    assert quality.mean_pairwise_distance(x) == pytest.approx(pdist(x.reshape(6, -1)).mean())
    brute = [min(np.linalg.norm(xi.ravel() - r.ravel()) for r in ref) for xi in x]
    assert np.allclose(quality.nearest_distance(x, ref), brute, atol=1e-5)
    probs = np.array([[0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    targets = np.array([[0, 1, 0], [0, 1, 0], [0.5, 0, 0.5]])
    assert quality.judge_correct(probs, targets).tolist() == [True, False, True]


def test_per_target_table_accounting():
    images = np.arange(8 * 4, dtype=float).reshape(8, 1, 2, 2)
    targets = np.eye(3)[[0, 0, 0, 0, 2, 2, 2, 2]]
    success = np.array([1, 1, 0, 1, 1, 0, 0, 0], bool)
    steps = np.array([10, 20, 99, 30, 5, 99, 99, 99])
    measures = {"judge_correct": np.array([1, 0, 0, 1, 1, 1, 0, 0], bool), "recon_error": np.full(8, 0.5),
                "nearest_train": np.arange(8.0)}
    rows = quality.per_target_table(images, targets, success, steps, measures)
    assert [r["target"] for r in rows] == ["0", "2", "all"]
    assert rows[0]["success_rate"] == 0.75 and rows[0]["steps_to_success"] == 20.0
    assert rows[1]["success_rate"] == 0.25 and rows[1]["steps_to_success"] == 5.0
    assert rows[0]["judge_accuracy"] == 0.5 and rows[2]["judge_accuracy"] == 0.5
    assert rows[2]["n"] == 8 and rows[2]["success_rate"] == 0.5 and rows[2]["nearest_train"] == 3.5
    assert rows[2]["diversity"] == pytest.approx((rows[0]["diversity"] + rows[1]["diversity"]) / 2)


# ------------------------------------------------------------ the experiment file

def test_lso_study_runs_every_method_and_reuses_runs(tmp_path):
    for name in ("ae", "clf", "judge"):
        cfg = copy.deepcopy(CONFIGS[name])
        cfg["train"]["epochs"] = 2
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"name": f"tiny-{name}", **cfg}))
    study = {"kind": "lso", "name": "tiny", "classifier": "clf.yaml", "judge": "judge.yaml",
             "targets": [1, 7], "n": 3,
             "methods": [{"name": "paper step", "decoder": "ae.yaml",
                          "options": {"restarts": 1, "parallel": 1, "steps": 20}, "paper": {"success_rate": 0.64}},
                         {"name": "pixels", "space": "pixels", "realism": "ae.yaml",
                          "options": {"start": "gaussian", "max_step": 1.0, "steps": 20, "restarts": 2}}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    result = run_lso_study(path, out)
    assert [r["method"] for r in result["rows"]] == ["paper step", "pixels", "real test images"]
    assert {"table.md", "results.csv", "summary.json", "grid.png", "methods", "runs"} <= {p.name for p in out.iterdir()}
    assert (out / "methods" / "paper-step" / "samples.npz").exists()
    assert "| paper step |" in (out / "table.md").read_text() and "64%" in (out / "table.md").read_text()
    weights = sorted(out.glob("runs/*/model.safetensors"))
    assert len(weights) == 3  # ae trained once for two methods
    stamps = [w.stat().st_mtime_ns for w in weights]
    r = cli("lso-study", path, "--out", out)
    assert r.exit_code == 0, r.output + r.stderr
    assert [w.stat().st_mtime_ns for w in weights] == stamps  # read back, not retrained
    assert "real test images" in r.output


def test_bad_lso_study_file(tmp_path):
    path = tmp_path / "s.yaml"
    for name in ("c", "j"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(CONFIGS["clf"]))
    path.write_text(yaml.safe_dump({"kind": "lso", "name": "x", "classifier": "c.yaml", "judge": "j.yaml",
                                    "targets": [1], "methods": [{"name": "m", "decoder": "nope.yaml"}]}))
    with pytest.raises(AelabError, match="nope.yaml: no such config file"):
        load_study(path)
    path.write_text(yaml.safe_dump({"kind": "lso", "name": "x", "classifier": "c.yaml", "judge": "j.yaml",
                                    "targets": [1], "methods": [{"name": "m"}]}))
    with pytest.raises(AelabError, match=r"methods\[0\] \(m\): a latent-space method needs 'decoder'"):
        load_study(path)
    line = one_line_error(cli("lso-study", path))
    assert str(path) in line
    path.write_text(yaml.safe_dump({"kind": "lso", "name": "x", "classifier": "c.yaml", "judge": "j.yaml",
                                    "targets": [1], "methods": [{"name": "m", "decoder": "c.yaml",
                                                                 "options": {"optimiser": "adam"}}]}))
    with pytest.raises(AelabError, match=r"methods\[0\]\.options: .*optimiser"):
        load_study(path)


# ------------------------------------------------------------ shipped configs and study

def test_lso_configs_pair_up():
    from aelab.spec import load_config
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    for d in (5, 20):
        ae, vae = (load_config(root / f"configs/lso-{k}-latent{d}.yaml") for k in ("ae", "vae"))
        assert (ae.model.kind, vae.model.kind) == ("ae", "vae") and vae.data == ae.data
        assert vae.model.encoder == ae.model.encoder and vae.model.latent_dim == ae.model.latent_dim == d
    clf, judge = (load_config(root / f"configs/mnist14-{k}.yaml") for k in ("classifier", "judge"))
    assert clf.model.kind == judge.model.kind == "classifier" and clf.data == judge.data == ae.data.model_copy(
        update={"samples": None})
    assert clf.model.encoder != judge.model.encoder and clf.train.seed != judge.train.seed
    spec, base = load_study(root / "studies/lso-paper.yaml")
    assert spec.n * len(spec.targets) == 100 and spec.threshold == 0.001
    assert {(base / m.decoder).resolve().name for m in spec.methods if m.decoder} == {
        f"lso-{k}-latent{d}.yaml" for k in ("ae", "vae") for d in (5, 20)} | {
        "lso-cvae-latent20.yaml", "mnist14-dcgan.yaml", "mnist14-cgan.yaml"}
    assert any(m.space == "pixels" for m in spec.methods)
    # every generator shares the classifier's data, and the CVAE is the VAE's twin
    for name in ("lso-cvae-latent20", "mnist14-dcgan", "mnist14-cgan"):
        assert load_config(root / f"configs/{name}.yaml").data == ae.data
    cvae, vae20 = load_config(root / "configs/lso-cvae-latent20.yaml"), load_config(root / "configs/lso-vae-latent20.yaml")
    assert cvae.model.model_dump(exclude={"kind"}) == vae20.model.model_dump(exclude={"kind"})
    assert cvae.train == vae20.train


def test_equal_failures_of_one_sample_keep_one_answer():
    model = toy_model()
    bad = torch.tensor([[40.0, 0.0]])
    res = lso.optimize(model, np.eye(3)[[2]], FixedStarts(torch.cat([bad, bad])), lso.NormalizedStep(0.5),
                       threshold=1e-3, steps=0, restarts=2, parallel=2)
    assert res.success.tolist() == [False] and res.restarts.tolist() == [2]
    assert res.restart_failures == 2 and res.restart_successes == 0
    assert torch.allclose(torch.as_tensor(res.latents), bad) and np.isfinite(res.error).all()
