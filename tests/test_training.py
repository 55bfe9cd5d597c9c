"""The gradient trainer end to end: determinism, kill-and-resume, divergence,
early stopping, checkpoints, every optimizer and schedule."""
from __future__ import annotations

import math
import signal

import pytest
import torch
from conftest import killed, sigkill_when
from safetensors.torch import load_file

import aelab
from aelab.errors import ConfigError, RunDirError
from aelab.spec import OPTIMIZERS
from aelab.training.checkpoint import read_checkpoint

VOLATILE = {"seconds"}


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


def assert_same_weights(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def vae_with_noise(tiny: dict) -> dict:
    """A VAE with dropout and an LR schedule: every RNG and every piece of
    optimizer/scheduler state matters for an exact resume."""
    tiny["model"] = {"kind": "vae", "encoder": [{"type": "dense", "units": 16},
                                                {"type": "dropout", "rate": 0.2}],
                     "latent_dim": 2, "kl_warmup": 2}
    tiny["train"].update(epochs=5, schedule="step", schedule_args={"step_size": 2, "gamma": 0.5}, loss="bce")
    return tiny


def test_same_seed_same_bits_and_other_seed_differs(tiny, tmp_path):
    a = aelab.train(tiny, out=tmp_path / "a")
    b = aelab.train(tiny, out=tmp_path / "b")
    c = aelab.train(tiny, overrides=["train.seed=1"], out=tmp_path / "c")
    assert_same_weights(a.path, b.path)
    assert stable(a.metrics) == stable(b.metrics)
    assert not torch.equal(weights(a.path)["decoder.0.0.weight"], weights(c.path)["decoder.0.0.weight"])


def train_killed_in_epoch(cfg: dict, out, epoch: int) -> int:
    """Train ``cfg`` in a child that SIGKILLs itself right after the
    weights moved in epoch ``epoch`` (not checkpointed yet)."""
    def work():
        import aelab.training.gradient as g
        sigkill_when(g.GradientTrainer, "train_epoch", lambda _, __, x, y, e: e == epoch)
        aelab.train(cfg, out=out)
    return killed(work)


@pytest.mark.parametrize("kill_in_epoch", [0, 2])
def test_sigkill_then_resume_equals_uninterrupted(tiny, tmp_path, kill_in_epoch):
    cfg = vae_with_noise(tiny)
    out = tmp_path / "killed"
    assert train_killed_in_epoch(cfg, out, kill_in_epoch) == -signal.SIGKILL
    assert not (out / "metrics.json").exists()
    assert (out / "checkpoint.safetensors").exists() == (kill_in_epoch > 0)

    assert_resumes_to_the_uninterrupted_run(out, cfg, tmp_path / "straight")


def assert_resumes_to_the_uninterrupted_run(killed, cfg: dict, straight_dir) -> None:
    """``--resume`` of ``killed`` ends with the weights, metrics and history
    of ``cfg`` trained without interruption."""
    resumed = aelab.train(resume=killed)
    straight = aelab.train(cfg, out=straight_dir)
    assert resumed.status == "completed"
    assert_same_weights(resumed.path, straight.path)
    assert stable(resumed.metrics) == stable(straight.metrics)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert drop(resumed.history) == drop(straight.history) and len(resumed.history) == cfg["train"]["epochs"]


@pytest.mark.parametrize("seconds, checkpointed", [(0, 3), (3600, 1)])
def test_sigkill_with_a_time_based_policy_resumes_to_the_same_run(tiny, tmp_path, seconds, checkpointed):
    """Killed in the 4th of 5 epochs: checkpoint_seconds=0 left the checkpoint
    of epoch 3 on disk, a long interval only that of epoch 1 (the first epoch
    of a run is always checkpointed); either way the resumed run replays the
    missing epochs to the same bits as a run never interrupted."""
    cfg = vae_with_noise(tiny)
    cfg["train"]["checkpoint_seconds"] = seconds
    out = tmp_path / "killed"
    assert train_killed_in_epoch(cfg, out, 3) == -signal.SIGKILL
    assert read_checkpoint(out / "checkpoint.safetensors")[1]["epoch"] == checkpointed

    assert_resumes_to_the_uninterrupted_run(out, cfg, tmp_path / "straight")


def test_resume_of_finished_run_changes_nothing(tiny, tmp_path):
    run = aelab.train(tiny, out=tmp_path / "r")
    before = weights(run.path)
    again = aelab.train(resume=run.path)
    assert stable(again.metrics) == stable(run.metrics)
    for k, v in weights(run.path).items():
        assert torch.equal(v, before[k])


def test_resume_rejects_non_runs_and_extra_config(tiny, tmp_path):
    with pytest.raises(RunDirError, match="not a run directory"):
        aelab.train(resume=tmp_path)
    run = aelab.train(tiny, out=tmp_path / "r")
    with pytest.raises(ConfigError, match="--resume"):
        aelab.train(tiny, resume=run.path)


def test_existing_run_dir_is_not_overwritten(tiny, tmp_path):
    aelab.train(tiny, out=tmp_path / "r")
    with pytest.raises(RunDirError, match="already holds a run"):
        aelab.train(tiny, out=tmp_path / "r")


def test_checkpoint_is_safetensors_with_json_state(tiny, tmp_path):
    run = aelab.train(tiny, out=tmp_path / "r")
    tensors, meta = read_checkpoint(run.path / "checkpoint.safetensors")
    assert meta["epoch"] == 4 and meta["status"] == "completed" and len(meta["history"]) == 4
    assert any(k.startswith("optim.") for k in tensors) and "rng.torch" in tensors
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match="bad.safetensors"):
        read_checkpoint(tmp_path / "bad.safetensors")


def test_nan_loss_stops_cleanly_as_diverged(tiny, tmp_path):
    tiny["model"]["output_activation"] = "linear"
    tiny["train"].update(optimizer="sgd", lr=1e8, epochs=6)
    run = aelab.train(tiny, out=tmp_path / "d")
    assert run.status == "diverged"
    assert run.metrics["diverged_epoch"] == len(run.history) < 6
    assert not math.isfinite(run.history[-1]["train_loss"])
    assert "silhouette" not in run.metrics  # no metrics computed from NaN outputs


def test_early_stopping_restores_best_weights(tiny, tmp_path):
    tiny["train"].update(epochs=10, early_stopping=1, min_delta=1e9)  # nothing after epoch 1 counts
    run = aelab.train(tiny, out=tmp_path / "es")
    assert run.metrics["stopped_early"] is True and run.metrics["epochs_trained"] == 2
    assert run.metrics["best_epoch"] == 1
    one = aelab.train(tiny, overrides=["train.epochs=1", "train.early_stopping=null"], out=tmp_path / "one")
    assert_same_weights(run.path, one.path)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(tiny, tmp_path, optimizer):
    extra = ["train.momentum=0.9", "train.nesterov=true"] if optimizer == "sgd" else []
    run = aelab.train(tiny, overrides=[f"train.optimizer={optimizer}", "train.epochs=2", *extra],
                      out=tmp_path / optimizer)
    assert run.status == "completed" and math.isfinite(run.metrics["recon_mse"])


@pytest.mark.parametrize("schedule,lr_after", [("step", 0.005), ("exponential", 0.009), ("cosine", None),
                                               ("plateau", None)])
def test_schedules_change_the_learning_rate(tiny, tmp_path, schedule, lr_after):
    args = {"step": "{step_size: 1, gamma: 0.5}", "exponential": "{gamma: 0.9}"}.get(schedule, "{}")
    run = aelab.train(tiny, overrides=[f"train.schedule={schedule}", f"train.schedule_args={args}"],
                      out=tmp_path / schedule)
    lrs = [r["lr"] for r in run.history]
    assert lrs[0] == pytest.approx(0.01)
    if lr_after is not None:
        assert lrs[1] == pytest.approx(lr_after)
    if schedule == "cosine":
        assert lrs[-1] < lrs[0]


def test_grad_clip_and_weight_decay_run(tiny, tmp_path):
    run = aelab.train(tiny, overrides=["train.grad_clip=0.1", "train.weight_decay=0.01"], out=tmp_path / "g")
    assert run.status == "completed"


def test_classifier_trains_and_reports_accuracy(tiny, tmp_path):
    tiny["model"] = {"kind": "classifier", "encoder": [32]}
    tiny["train"].update(epochs=8)
    run = aelab.train(tiny, out=tmp_path / "clf")
    assert run.metrics["accuracy"] > 0.8
    model = aelab.load_model(run.path)
    assert model.kind == "classifier"


def test_run_directory_contents_and_figures(tiny, tmp_path):
    tiny["model"]["kind"] = "vae"
    tiny["eval"]["figures"] = True
    run = aelab.train(tiny, out=tmp_path / "v")
    names = {p.name for p in run.path.iterdir()}
    assert {"config.yaml", "metrics.json", "history.csv", "model.safetensors", "model.json",
            "checkpoint.safetensors", "report.md", "figures"} <= names
    figs = {p.name for p in (run.path / "figures").iterdir()}
    assert {"loss_curves.png", "reconstructions.png", "latent_scatter.png", "samples.png", "manifold.png"} == figs
    assert not [p for p in run.path.rglob("*.tmp")]
    m = run.metrics
    for key in ("recon_mse", "silhouette", "nmi", "ari", "cluster_acc", "knn_acc", "trustworthiness",
                "elbo", "kl", "status"):
        assert key in m
    assert m["elbo"] == pytest.approx(-(m["recon_term"] + m["kl"]))
    assert list(run.history[0])[:4] == ["epoch", "train_loss", "val_loss", "seconds"]
    report = (run.path / "report.md").read_text()
    assert "figures/manifold.png" in report and "silhouette" in report


def test_evaluate_recomputes_the_same_metrics(tiny, tmp_path):
    run = aelab.train(tiny, out=tmp_path / "e")
    again = aelab.evaluate(run.path, figures=False)
    for k in ("recon_mse", "silhouette", "knn_acc", "nmi"):
        assert again[k] == pytest.approx(run.metrics[k], rel=1e-6)


def test_reloaded_model_reproduces_reconstructions(tiny, tmp_path):
    run = aelab.train(tiny, out=tmp_path / "m")
    data = aelab.load_dataset(run.config.data)
    model = aelab.load_model(run.path)
    x = torch.as_tensor(data.x_test)
    with torch.no_grad():
        mse = float(((model(x)["x_hat"] - x) ** 2).mean())
    assert mse == pytest.approx(run.metrics["recon_mse"], rel=1e-5)


def test_output_range_warning_on_standardized_data(tiny, tmp_path):
    tiny["data"]["normalize"] = "standardize"
    with pytest.warns(UserWarning, match="sigmoid"):
        aelab.train(tiny, overrides=["train.epochs=1"], out=tmp_path / "w", quiet=False)
