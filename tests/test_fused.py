"""Fused training (aelab.training.fused): member k of a fused group is the
same model as its config trained alone with GradientTrainer -- history,
final weights and optimizer state bit for bit on the CPU -- whatever the
other members do (other seeds, optimizers, learning rates, early stopping,
divergence)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import TINY

from aelab import pipeline
from aelab.data import load_dataset
from aelab.spec import OPTIMIZERS, load_config
from aelab.fused_runs import fused_group
from aelab.training.fused import FusedGradientTrainer, check_stackable

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    data = load_dataset(load_config(copy.deepcopy(TINY)).data)
    return data, pipeline.tensors(data, CPU)


def configs(tiny: dict, *members: dict) -> list:
    """One config per member: ``tiny`` with the member's train/model fields."""
    out = []
    for m in members:
        cfg = copy.deepcopy(tiny)
        cfg["model"].update(m.get("model", {}))
        cfg["train"].update(m.get("train", {}))
        out.append(load_config(cfg))
    return out


def solo(cfg, digits):
    data, tensors = digits
    runner = pipeline.trainer(cfg.train.method).make(pipeline.build(cfg, data, CPU, warn=False), cfg, [])
    runner.fit(*tensors)
    return runner


def fused(cfgs, digits, chunk=None):
    data, tensors = digits
    trainer = fused_group(cfgs, data, CPU, chunk=chunk)
    trainer.fit(*tensors)
    return trainer.members()


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def assert_equals_solo(member, alone) -> None:
    """Status, every history value but the wall time, final weights and the
    optimizer state: bitwise (the message gives the largest relative gap)."""
    assert member.state.status == alone.state.status
    assert member.state.stopped_early == alone.state.stopped_early
    assert member.state.best_epoch == alone.state.best_epoch
    assert len(member.state.history) == len(alone.state.history)
    for rf, rs in zip(member.state.history, alone.state.history):
        assert rf.keys() == rs.keys()
        for key in rs:
            if key != "seconds":
                assert _same(rf[key], rs[key]), f"epoch {rs['epoch']} {key}: fused {rf[key]!r}, solo {rs[key]!r}"
    for (name, pf), (_, ps) in zip(member.model.named_parameters(), alone.model.named_parameters()):
        assert torch.equal(pf.nan_to_num(7.0), ps.nan_to_num(7.0)), f"{name}: max relative gap {_rel(pf, ps):.1e}"
    for (name, bf), (_, bs) in zip(member.model.named_buffers(), alone.model.named_buffers()):
        assert torch.equal(bf, bs), f"buffer {name}: fused {bf}, solo {bs}"
    fs, ss = member.optimizer.state_dict()["state"], alone.optimizer.state_dict()["state"]
    assert fs.keys() == ss.keys()
    for pid in ss:
        assert fs[pid].keys() == ss[pid].keys(), pid
        for key, v in ss[pid].items():
            w = fs[pid][key]
            assert (v is None and w is None) or torch.equal(w.nan_to_num(7.0), v.nan_to_num(7.0)), (pid, key)


def assert_group_equals_solo(cfgs, digits, chunk=None) -> list:
    members = fused(cfgs, digits, chunk)
    for cfg, member in zip(cfgs, members):
        assert_equals_solo(member, solo(cfg, digits))
    return members


@pytest.mark.parametrize("loss, chunk", [("mse", None), ("bce", 2)])
def test_dense_ae_three_seeds_equal_their_solo_runs(tiny, digits, loss, chunk):
    """One batched pass for all members, or members in passes of ``chunk``."""
    cfgs = configs(tiny, *({"train": {"seed": s, "loss": loss}} for s in (0, 1, 2)))
    members = assert_group_equals_solo(cfgs, digits, chunk)
    assert not torch.equal(members[0].model.to_latent.weight, members[1].model.to_latent.weight)


@pytest.mark.parametrize("chunk", [None, 1])
def test_vae_noise_is_each_members_own(tiny, digits, chunk):
    """Reparameterization noise and dropout masks drawn per member with the
    solo seeding; dropout rates, beta and KL warm-up differ per member."""
    model = {"kind": "vae", "encoder": [{"type": "dense", "units": 16}, {"type": "dropout", "rate": 0.2}],
             "latent_dim": 2, "kl_warmup": 2}
    other = {**model, "encoder": [{"type": "dense", "units": 16}, {"type": "dropout", "rate": 0.5}],
             "beta": 0.5, "kl_warmup": 0}
    train = {"loss": "bce", "schedule": "step", "schedule_args": {"step_size": 2, "gamma": 0.5}}
    assert_group_equals_solo(configs(tiny, {"model": model, "train": {**train, "seed": 0}},
                                     {"model": other, "train": {**train, "seed": 1}}), digits, chunk)


def test_classifier(tiny, digits):
    model = {"kind": "classifier", "encoder": [32]}
    members = assert_group_equals_solo(configs(tiny, {"model": model, "train": {"seed": 0}},
                                               {"model": model, "train": {"seed": 1, "lr": 0.003}}), digits)
    assert "val_acc" in members[0].state.history[-1]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_with_a_learning_rate_per_member(tiny, digits, optimizer):
    extra = {"sgd": {"momentum": 0.9, "nesterov": True}, "rmsprop": {"momentum": 0.5}}.get(optimizer, {})
    lrs = {"adadelta": (1.0, 0.5), "sgd": (0.05, 0.02)}.get(optimizer, (0.01, 0.003))
    assert_group_equals_solo(configs(tiny, *({"train": {"optimizer": optimizer, "lr": lr, "seed": k, **extra}}
                                             for k, lr in enumerate(lrs))), digits)


def test_all_optimizers_in_one_group_with_keras_defaults_and_options(tiny, digits):
    """Eight optimizers, Keras defaults, weight decay, gradient clipping, a
    schedule each: members in one fused group, each still its solo run."""
    schedules = [("none", {}), ("step", {"step_size": 1, "gamma": 0.5}), ("exponential", {"gamma": 0.9}),
                 ("cosine", {}), ("plateau", {"patience": 0})]
    members = []
    for k, opt in enumerate(OPTIMIZERS):
        schedule, args = schedules[k % len(schedules)]
        members.append({"train": {"optimizer": opt, "lr": 1.0 if opt == "adadelta" else 0.004 * (k + 1),
                                  "seed": k, "optimizer_defaults": "keras", "weight_decay": 0.01 * (k % 2),
                                  "grad_clip": 0.5 if k % 3 == 0 else None, "schedule": schedule,
                                  "schedule_args": args}})
    assert_group_equals_solo(configs(tiny, *members), digits)


def test_chunks_that_straddle_optimizer_groups(tiny, digits):
    """Members in passes of 3 over groups of 2, 2 and 1: each pass steps parts of groups."""
    sgd = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}
    members = [{"train": {"seed": 0}}, {"train": {"seed": 1, "lr": 0.02}}, {"train": {"seed": 2, **sgd}},
               {"train": {"seed": 3, **sgd, "lr": 0.02}}, {"train": {"seed": 4, "optimizer": "nadam"}}]
    assert_group_equals_solo(configs(tiny, *members), digits, chunk=3)


def test_a_member_that_stops_early_leaves_the_others_unchanged(tiny, digits):
    stopper = {"train": {"seed": 0, "epochs": 10, "early_stopping": 1, "min_delta": 1e9}}  # stops after epoch 2
    cfgs = configs(tiny, stopper, {"train": {"seed": 1, "epochs": 5}}, {"train": {"seed": 2, "epochs": 3}})
    members = assert_group_equals_solo(cfgs, digits)
    assert [len(m.state.history) for m in members] == [2, 5, 3]
    assert members[0].state.stopped_early and members[0].state.best_epoch == 1


def test_a_diverging_member_is_masked_out(tiny, digits):
    linear = {"output_activation": "linear"}
    cfgs = configs(tiny, {"model": linear, "train": {"seed": 0, "optimizer": "sgd", "lr": 1e8, "epochs": 6}},
                   {"model": linear, "train": {"seed": 1, "epochs": 6}},
                   {"model": linear, "train": {"seed": 2, "optimizer": "sgd", "lr": 0.05, "epochs": 6}})
    members = assert_group_equals_solo(cfgs, digits)
    assert members[0].state.status == "diverged" and len(members[0].state.history) < 6
    assert not math.isfinite(members[0].state.history[-1]["train_loss"])
    assert [m.state.status for m in members[1:]] == ["completed", "completed"]
    assert all(len(m.state.history) == 6 for m in members[1:])


def test_models_of_different_shapes_are_refused(tiny, digits):
    data, _ = digits
    cfgs = configs(tiny, {"train": {"seed": 0}}, {"train": {"seed": 1}}, {"model": {"encoder": [32]}})
    models = [pipeline.build(c, data, CPU, warn=False) for c in cfgs]
    with pytest.raises(ValueError, match=r"parameter 'body\.0\.0\.1\.weight' is \(32, 64\) in model 2 "
                                         r"but \(16, 64\) in model 0"):
        FusedGradientTrainer(models, [c.train for c in cfgs], [c.model for c in cfgs])
    check_stackable(models[:2])  # the two of one shape stack


class _Kill(Exception):
    """Stands for SIGKILL: the group stops after ``epoch`` with nothing but its checkpoints kept."""


class _KillAfter:
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_start(self, trainer): ...

    def on_epoch_end(self, trainer):
        if trainer.state.epoch >= self.epoch:
            raise _Kill

    def on_train_end(self, trainer): ...


def test_a_group_restarted_from_its_members_checkpoints_ends_as_uninterrupted(tiny, digits, tmp_path):
    """Every member checkpoints as its solo run would (every 2 epochs); a new
    group built from those checkpoints -- mixed with a fresh member -- ends
    bit for bit where the solo runs end: the optimizer state (all eight
    rules), schedules and early-stopping bookkeeping are carried over."""
    from aelab.training.callbacks import CheckpointCallback
    data, tensors = digits
    members = [{"train": {"optimizer": opt, "seed": k, "epochs": 5, "lr": 1.0 if opt == "adadelta" else 0.01,
                          "schedule": "step", "schedule_args": {"step_size": 2, "gamma": 0.5},
                          **({"momentum": 0.9} if opt in ("sgd", "rmsprop") else {})}}
               for k, opt in enumerate(OPTIMIZERS)]
    cfgs = configs(tiny, *members)
    paths = [tmp_path / f"m{k}.safetensors" for k in range(len(cfgs))]
    models = [pipeline.build(c, data, CPU, warn=False) for c in cfgs]
    first = FusedGradientTrainer(models, [c.train for c in cfgs], [c.model for c in cfgs],
                                 callbacks=[[CheckpointCallback(p, every=2), _KillAfter(3)] for p in paths])
    with pytest.raises(_Kill):
        first.fit(*tensors)
    fresh = configs(tiny, {"train": {"seed": 9, "epochs": 5}})[0]
    again = cfgs + [fresh]
    models = [pipeline.build(c, data, CPU, warn=False) for c in again]
    second = FusedGradientTrainer(models, [c.train for c in again], [c.model for c in again],
                                  restore=paths + [None])
    assert [t.state.epoch for t in second.trainers] == [2] * len(cfgs) + [0]
    second.fit(*tensors)
    for cfg, member in zip(again, second.members()):
        assert_equals_solo(member, solo(cfg, digits))


def test_a_family_fuses_only_as_the_objective_its_own_class_declares():
    """A subclass of the AE family (a denoising AE, say) trains under its own
    objective: it does not inherit the AE's fused one, so it is never
    stacked under the plain reconstruction loss."""
    from aelab.models.families.ae.family import AutoencoderFamily as AEFamily
    assert AEFamily().fused_objective() == "reconstruct"
    assert type("Denoising", (AEFamily,), {"kind": "dae"})().fused_objective() is None


@pytest.mark.parametrize("kind", ["ae", "vae", "classifier"])
def test_convolutional_members_equal_their_solo_runs(tiny, digits, kind):
    """Convolutions (and transposed ones in the mirrored decoder), pooling and
    their reshapes: each member's convolution is the solo kernel's own call."""
    model = {"kind": kind, "encoder": [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": "same"},
                                       {"type": "maxpool", "size": 2},
                                       {"type": "conv2d", "filters": 4, "kernel": 3, "stride": 2}, {"type": "flatten"},
                                       {"type": "dense", "units": 8}]}
    if kind == "classifier":
        model["encoder"] = model["encoder"][:4]
    members = [{"model": model, "train": {"seed": 0}},
               {"model": model, "train": {"seed": 1, "optimizer": "rmsprop", "lr": 0.003}},
               {"model": model, "train": {"seed": 2, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9}}]
    assert_group_equals_solo(configs(tiny, *members), digits, chunk=2)


def test_grouped_convolutions_agree_with_the_solo_ones_to_rounding(tiny, digits):
    """Off the exact path (what CUDA runs): one grouped convolution for all
    members, equal to the per-member kernels to float rounding."""
    from aelab.training.fused.forward import _conv
    from aelab.training.fused.stack import _compile
    data, _ = digits
    enc = [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": "same"}, {"type": "flatten"}]
    cfgs = configs(tiny, *({"model": {"encoder": enc}, "train": {"seed": s}} for s in range(3)))
    models = [pipeline.build(c, data, CPU, warn=False) for c in cfgs]
    plan = _compile(models)
    params = [torch.stack([dict(m.named_parameters())[n] for m in models]) for n, _ in models[0].named_parameters()]
    h = torch.randn(3, 5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    step = next(s for steps in plan.values() for s in steps if s.op == "conv")
    exact = _conv(type("F", (), {"exact": True}), step, params, h, None, None)
    grouped = _conv(type("F", (), {"exact": False}), step, params, h, None, None)
    assert exact.shape == grouped.shape == (3, 5, 3, 8, 8)
    torch.testing.assert_close(grouped, exact, rtol=1e-5, atol=1e-6)
    decoder = plan["decoder"]
    t = next((s for s in decoder if s.op == "conv"), None)
    if t is not None:  # the mirror decodes with a transposed convolution
        z = torch.randn(3, 5, *t.module.weight.shape[:1], 8, 8)
        torch.testing.assert_close(_conv(type("F", (), {"exact": False}), t, params, z, None, None),
                                   _conv(type("F", (), {"exact": True}), t, params, z, None, None),
                                   rtol=1e-5, atol=1e-6)


def test_only_a_trainer_that_declares_it_fuses():
    """Fusing asks the trainer plug-in (``Trainer.fuses``), never its name."""
    from aelab.fused_runs import stack_key
    from aelab.training.registry import methods, trainer
    assert [m for m in methods() if trainer(m).fuses] == ["gradient"]
    cfg = load_config(copy.deepcopy(TINY))
    assert stack_key(cfg) is not None
    ga = copy.deepcopy(TINY)
    ga["train"] = {"method": "ga", "generations": 2, "population": 4}
    assert stack_key(load_config(ga)) is None


@pytest.mark.parametrize("kind", ["ae", "vae", "classifier"])
def test_batch_norm_members_equal_their_solo_runs(tiny, digits, kind):
    """Batch norm (1-d and 2-d, and the mirrored decoder's): each member
    normalizes by its own batch statistics and moves its own running
    statistics, which evaluation and the saved model then use."""
    model = {"kind": kind, "encoder": [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": "same"},
                                       {"type": "batchnorm"}, {"type": "flatten"},
                                       {"type": "dense", "units": 8}, {"type": "batchnorm"}]}
    members = [{"model": model, "train": {"seed": 0}},
               {"model": model, "train": {"seed": 1, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9}},
               {"model": model, "train": {"seed": 2, "epochs": 6, "early_stopping": 1, "min_delta": 1e9}}]
    fused_members = assert_group_equals_solo(configs(tiny, *members), digits, chunk=2)
    assert fused_members[2].state.stopped_early
    for member in fused_members:
        bn = next(m for m in member.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
        assert int(bn.num_batches_tracked) > 0 and not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))


def test_batch_norm_with_a_cumulative_average(tiny, digits):
    """momentum None (the running statistics as a cumulative average) and no
    running statistics at all (batch statistics in evaluation too)."""
    cfgs = configs(tiny, *({"model": {"encoder": [{"type": "dense", "units": 8}, {"type": "batchnorm"}]},
                            "train": {"seed": s}} for s in (0, 1)))
    data, tensors = digits
    for momentum, track in ((None, True), (0.1, False)):
        models = []
        for cfg in cfgs:
            model = pipeline.build(cfg, data, CPU, warn=False)
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm1d):
                    m.momentum, m.track_running_stats = momentum, track
                    if not track:
                        m.running_mean = m.running_var = m.num_batches_tracked = None
            models.append(model)
        solo_models = copy.deepcopy(models)
        trainer = FusedGradientTrainer(models, [c.train for c in cfgs], [c.model for c in cfgs])
        trainer.fit(*tensors)
        for cfg, member, model in zip(cfgs, trainer.members(), solo_models):
            alone = pipeline.trainer(cfg.train.method).make(model, cfg, [])
            alone.fit(*tensors)
            assert_equals_solo(member, alone)


def test_batch_norm_off_the_exact_path_agrees_to_rounding(tiny, digits):
    """What CUDA runs: one batch norm over the members' channels side by
    side, equal to the per-member kernels to float rounding, running
    statistics included."""
    from aelab.training.fused.forward import _batchnorm
    from aelab.training.fused.stack import _compile
    data, _ = digits
    enc = [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": "same"}, {"type": "batchnorm"}, {"type": "flatten"}]
    cfgs = configs(tiny, *({"model": {"encoder": enc}, "train": {"seed": s}} for s in range(3)))
    models = [pipeline.build(c, data, CPU, warn=False) for c in cfgs]
    step = next(s for steps in _compile(models).values() for s in steps if s.op == "batchnorm")
    params = [torch.stack([dict(m.named_parameters())[n] for m in models]) for n, _ in models[0].named_parameters()]
    h = torch.randn(3, 5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    outs = {}
    for exact in (True, False):
        buffers = [torch.stack([dict(m.named_buffers())[n] for m in models]).clone() for n, _ in models[0].named_buffers()]
        fwd = type("F", (), {"exact": exact, "buffers": buffers})
        outs[exact] = (_batchnorm(fwd, step, params, h, object(), None), buffers)
    torch.testing.assert_close(outs[False][0], outs[True][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(outs[False][1], outs[True][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_allocator_setting_applies_on_glibc_only(monkeypatch):
    """Raised once per process where the C library is glibc; elsewhere
    nothing is changed and training goes on."""
    import sys as _sys

    from aelab.training.fused import allocator
    monkeypatch.setattr(allocator, "_DONE", [])
    monkeypatch.setattr(_sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(allocator, "_DONE", [])
    monkeypatch.setattr(_sys, "platform", "linux")
    glibc = hasattr(__import__("ctypes").CDLL(None), "gnu_get_libc_version")
    assert allocator.keep_freed_memory() is glibc
    assert allocator.keep_freed_memory() is glibc  # once: the first answer is kept


@pytest.mark.parametrize("encoder", [[16], [{"type": "conv2d", "filters": 3, "kernel": 3, "padding": "same"},
                                           {"type": "flatten"}, {"type": "dense", "units": 8}]])
def test_conditional_vae_members_equal_their_solo_runs(tiny, digits, encoder):
    """The one-hot label joins the body's features and the code in every
    member, as the solo CVAE joins them; beta, warm-up and optimizers differ."""
    model = {"kind": "cvae", "encoder": encoder, "latent_dim": 2}
    members = [{"model": model, "train": {"seed": 0, "loss": "bce"}},
               {"model": {**model, "beta": 2.0, "kl_warmup": 2}, "train": {"seed": 1, "loss": "bce", "lr": 0.003}},
               {"model": model, "train": {"seed": 2, "loss": "bce", "optimizer": "rmsprop"}}]
    fused_members = assert_group_equals_solo(configs(tiny, *members), digits, chunk=2)
    assert "val_kl" in fused_members[0].state.history[-1]


def test_a_module_declares_what_fuses_in_its_own_class_only():
    """``fused_layout`` is read from the module's own class: a subclass of
    the conditional VAE does not inherit it (it may train otherwise)."""
    from aelab.models.families.cvae.family import CVAE
    from aelab.training.fused.stack import layout
    model = CVAE(torch.nn.Flatten(), torch.nn.Linear(74, 2), torch.nn.Linear(74, 2), torch.nn.Linear(12, 64), 2, 10)
    assert layout(model)[1] == "conditional"
    sub = type("Other", (CVAE,), {})(*model.children(), 2, 10)
    with pytest.raises(ValueError, match="fused training covers"):
        layout(sub)


@pytest.mark.parametrize("capacity_of", ["image", "batch"])
def test_capacity_vae_members_equal_their_solo_runs(tiny, digits, capacity_of):
    """dbvae (Burgess et al. 2018, eq. 8): each member its own gamma and
    capacity ramp, C taken at its own epoch; history reports C as the solo
    run does."""
    model = {"kind": "dbvae", "encoder": [16], "latent_dim": 2, "capacity_of": capacity_of,
             "gamma": 10, "capacity_max": 5, "capacity_epochs": 2}
    members = [{"model": model, "train": {"seed": 0, "loss": "bce"}},
               {"model": {**model, "gamma": 3, "capacity_epochs": 0}, "train": {"seed": 1, "loss": "bce"}},
               {"model": {**model, "capacity_max": 2}, "train": {"seed": 2, "loss": "bce", "optimizer": "sgd",
                                                               "lr": 0.01}}]
    fused_members = assert_group_equals_solo(configs(tiny, *members), digits, chunk=2)
    assert [m.state.history[0]["train_capacity"] for m in fused_members] == [0.0, 5.0, 0.0]


def test_members_holding_different_kls_at_c_do_not_stack(tiny, digits):
    model = {"kind": "dbvae", "encoder": [16], "latent_dim": 2}
    cfgs = configs(tiny, {"model": {**model, "capacity_of": "image"}}, {"model": {**model, "capacity_of": "batch"}})
    with pytest.raises(ValueError, match="one model.capacity_of for all members"):
        fused_group(cfgs, digits[0], CPU)


@pytest.mark.parametrize("sparsity", ["kl", "l1"])
def test_sparse_autoencoder_members_equal_their_solo_runs(tiny, digits, sparsity):
    """sae (Ng's J_sparse): each member its own penalty weight and target."""
    model = {"kind": "sae", "encoder": [16], "latent_dim": 4, "sparsity": sparsity}
    members = [{"model": model, "train": {"seed": 0}},
               {"model": {**model, "sparsity_weight": 0.5, "sparsity_target": 0.1}, "train": {"seed": 1}},
               {"model": model, "train": {"seed": 2, "optimizer": "rmsprop", "loss": "bce"}}][:2 + (sparsity == "l1")]
    if sparsity == "l1":
        members = [{**m, "train": {**m["train"], "loss": "mse"}} for m in members]
    fused_members = assert_group_equals_solo(configs(tiny, *members), digits, chunk=2)
    assert "val_sparsity" in fused_members[0].state.history[-1]


def test_members_with_different_penalties_do_not_stack(tiny, digits):
    model = {"kind": "sae", "encoder": [16], "latent_dim": 4, "latent_activation": "sigmoid"}
    cfgs = configs(tiny, {"model": {**model, "sparsity": "kl"}}, {"model": {**model, "sparsity": "l1"}})
    with pytest.raises(ValueError, match="one model.sparsity for all members"):
        fused_group(cfgs, digits[0], CPU)


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_pepper"])
def test_denoising_members_equal_their_solo_runs(tiny, digits, noise):
    """dae (Vincent et al. 2008): each member's batch corrupted on its own
    stream, as the solo run corrupts it from the global generator; the noise
    level differs per member, and dropout draws after the corruption."""
    level = 0.3 if noise != "gaussian" else 0.2
    model = {"kind": "dae", "encoder": [16, {"type": "dropout", "rate": 0.1}], "latent_dim": 3,
             "noise": noise, "noise_level": level}
    members = [{"model": model, "train": {"seed": 0}},
               {"model": {**model, "noise_level": level / 2}, "train": {"seed": 1, "optimizer": "sgd", "lr": 0.05}}]
    assert_group_equals_solo(configs(tiny, *members), digits)


def test_a_members_draws_from_the_global_generator_leave_it_alone():
    """``_MemberRNG.drawing``: solo code drawing from the global generator
    draws this member's stream (as a generator seeded alike would), and the
    global generator is as it was."""
    from aelab.training.fused.noise import _MemberRNG
    rng = _MemberRNG(5, CPU)
    before = torch.get_rng_state()
    with rng.drawing():
        a = torch.rand(3)
    with rng.drawing():
        b = torch.randn(2)
    assert torch.equal(torch.get_rng_state(), before)
    ref = torch.Generator().manual_seed(5)
    assert torch.equal(a, torch.rand(3, generator=ref)) and torch.equal(b, torch.randn(2, generator=ref))


@pytest.mark.parametrize("model", [
    {"kind": "wae", "encoder": [16, {"type": "dropout", "rate": 0.1}], "latent_dim": 3},
    {"kind": "wae", "encoder": [16], "latent_dim": 3, "kernel": "rbf", "multiscale": False, "prior_scale": 2.0},
    {"kind": "infovae", "encoder": [16], "latent_dim": 3, "alpha": 0.5, "mmd_weight": 2.0},
], ids=["wae-imq", "wae-rbf", "infovae"])
def test_mmd_members_equal_their_solo_runs(tiny, digits, model):
    """WAE-MMD and InfoVAE: each member's prior draws from its own stream,
    after its dropout masks and code noise, in training and in evaluation
    (where the solo objective draws too); weights differ per member."""
    other = {**model, "mmd_weight": 5.0 if model["kind"] == "wae" else 3.0}
    members = [{"model": model, "train": {"seed": 0}}, {"model": other, "train": {"seed": 1, "lr": 0.003}}]
    fused_members = assert_group_equals_solo(configs(tiny, *members), digits)
    assert "val_mmd" in fused_members[0].state.history[-1]


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_decomposed_vae_members_equal_their_solo_runs(tiny, digits, estimator):
    """beta-TCVAE: the solo estimators on each member's codes, the code drawn
    in evaluation too (as the solo objective draws it); alpha, beta, gamma
    and N differ per member."""
    model = {"kind": "tcvae", "encoder": [16], "latent_dim": 3, "estimator": estimator, "dataset_size": 200}
    members = [{"model": model, "train": {"seed": 0}},
               {"model": {**model, "beta": 2.0, "gamma": 0.5, "dataset_size": None}, "train": {"seed": 1}}]
    fused_members = assert_group_equals_solo(configs(tiny, *members), digits)
    assert "val_tc" in fused_members[0].state.history[-1]


def test_regularized_autoencoder_members_equal_their_solo_runs(tiny, digits):
    """RAE-L2: each member's code penalty and the L2 of its own decoder
    parameters, with its own weights."""
    model = {"kind": "rae", "encoder": [16], "latent_dim": 3, "regularization": "l2"}
    members = [{"model": model, "train": {"seed": 0}},
               {"model": {**model, "embedding_weight": 0.5, "reg_weight": 0.01}, "train": {"seed": 1}}]
    fused_members = assert_group_equals_solo(configs(tiny, *members), digits)
    assert "val_reg" in fused_members[0].state.history[-1]


def test_rae_gp_does_not_stack(tiny, digits):
    model = {"kind": "rae", "encoder": [16], "latent_dim": 3, "regularization": "gp"}
    with pytest.raises(ValueError, match="RAE-GP's decoder Jacobian has no fused form"):
        fused_group(configs(tiny, {"model": model}, {"model": model, "train": {"seed": 1}}), digits[0], CPU)


def test_importance_weighted_members_equal_their_solo_runs(tiny, digits):
    """IWAE: k codes per image from each member's stream (in evaluation too),
    decoded for every member at once, the bound per member by the solo code."""
    model = {"kind": "iwae", "encoder": [16], "latent_dim": 3, "samples": 3}
    members = [{"model": model, "train": {"seed": 0, "loss": "bce"}},
               {"model": model, "train": {"seed": 1, "loss": "bce", "optimizer": "rmsprop"}}]
    assert_group_equals_solo(configs(tiny, *members), digits)
    other = configs(tiny, {"model": model}, {"model": {**model, "samples": 2}, "train": {"seed": 1}})
    with pytest.raises(ValueError, match="one model.samples for all members"):
        fused_group(other, digits[0], CPU)
