"""Fused training against one-after-another: K seeds of one config trained as
ONE batched model (``aelab.training.fused.FusedGradientTrainer``) and the
same K runs trained one at a time with ``GradientTrainer``, side by side.

    python benchmarks/fused_speed.py [--config configs/digits-ae.yaml] [--k 24] [--epochs 5]
                                     [--rounds 2] [--threads 1] [--check] [--vmap]
    python benchmarks/fused_speed.py --config configs/mnist-hidden3.yaml --k 64 --epochs 2

Member k is the config with ``train.seed = seed + k`` and ``train.epochs =
--epochs``.  Both contenders build their K models the same way
(``aelab.pipeline.build``: checks, seed, build) and train on the same device
tensors; the timed span is building + training all K (what a study pays per
trial, without writing run directories).  Rounds alternate which contender
goes first, so drift in the machine's load hits both alike; the load average
is printed before and after.  ``--check`` also verifies that every fused
member's history and weights equal its solo run (bitwise, CPU).  ``--vmap``
adds a micro-benchmark of the forward+backward step: the fused engine's
stacked kernels against ``torch.func`` (``vmap(grad(functional_call))``) on
the same stacked parameters and batches.

The device is detected (CUDA when present), so the script runs unchanged on
a GPU; ``--threads`` sets torch's CPU threads (default 1).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aelab import pipeline
from aelab.data import load_dataset
from aelab.spec import load_config
from aelab.fused_runs import fused_group
from aelab.training.fused.stack import layout
from aelab.training.gradient import GradientTrainer
from aelab.training.objectives import make_objective


def configs(path: Path, k: int, epochs: int) -> list:
    base = load_config(path)
    return [load_config(path, overrides=[f"train.seed={base.train.seed + i}", f"train.epochs={epochs}",
                                         "train.threads=1"]) for i in range(k)]


def sequential(cfgs, data, device, tensors) -> tuple[float, list]:
    start = time.perf_counter()
    runs = []
    for cfg in cfgs:
        model = pipeline.build(cfg, data, device, warn=False)
        trainer = GradientTrainer(model, make_objective(cfg.model, cfg.train), cfg.train)
        trainer.fit(*tensors)
        runs.append(trainer)
    _sync(device)
    return time.perf_counter() - start, runs


def fused(cfgs, data, device, tensors) -> tuple[float, list]:
    start = time.perf_counter()
    trainer = fused_group(cfgs, data, device)
    trainer.fit(*tensors)
    _sync(device)
    return time.perf_counter() - start, trainer.members()


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check(fused_runs, solo_runs) -> str:
    """'bitwise' or the worst relative difference of histories and weights."""
    worst = 0.0
    for f, s in zip(fused_runs, solo_runs):
        for rf, rs in zip(f.state.history, s.state.history):
            for key in ("train_loss", "val_loss"):
                a, b = rf[key], rs[key]
                if a != b and not (math.isnan(a) and math.isnan(b)):
                    worst = max(worst, abs(a - b) / max(abs(b), 1e-30))
        if len(f.state.history) != len(s.state.history):
            return "histories differ in length"
        for pf, ps in zip(f.model.parameters(), s.model.parameters()):
            if not torch.equal(pf, ps):
                worst = max(worst, ((pf - ps).abs().max() / ps.abs().max().clamp_min(1e-30)).item())
    return "bitwise" if worst == 0 else f"max relative difference {worst:.2e}"


def step_micro(cfgs, data, device, tensors, steps: int = 20) -> None:
    """ms per forward+backward step: the fused engine's stacked kernels (exact
    and not) against torch.func's vmap(grad(functional_call))."""
    from torch.func import functional_call, grad, vmap

    trainer = fused_group(cfgs, data, device)
    x = tensors[0]
    K, bs = len(cfgs), cfgs[0].train.batch_size
    gen = torch.Generator().manual_seed(0)
    idx = torch.stack([torch.randperm(len(x), generator=gen)[:bs] for _ in range(K)]).to(device)
    xb = x[idx]
    model = trainer.trainers[0].model
    names = trainer.names
    loss_name = cfgs[0].train.loss
    if layout(model)[1] != "reconstruct":
        print("  --vmap: only for a plain autoencoder (its reconstruction loss)")
        return

    def member_loss(params, xk):
        out = functional_call(model, dict(zip(names, params)), (xk,))["x_hat"]
        if loss_name == "bce":
            p = out.clamp(1e-7, 1 - 1e-7)
            return (-(xk * torch.log(p) + (1 - xk) * torch.log1p(-p))).mean()
        return torch.nn.functional.mse_loss(out, xk)

    vgrad = vmap(grad(member_loss), in_dims=(0, 0))

    def stacked(engine):
        params = [p.detach().requires_grad_() for p in trainer.params]
        loss, _ = trainer.objective(engine, params, xb, None, None, {"kl_w": [1.0] * K})
        return torch.autograd.grad(loss.sum(), params)

    from aelab.training.fused import (
        _Forward,  # the same plan, batched kernels without calibration
    )
    fast = _Forward(trainer.forward.plan, exact=False)
    contenders = {"stacked, exact": lambda: stacked(trainer.forward), "stacked, not calibrated": lambda: stacked(fast),
                  "torch.func vmap": lambda: vgrad(tuple(p.detach() for p in trainer.params), xb)}
    times = {name: [] for name in contenders}
    for _ in range(3):  # warm-up (calibration, vmap tracing)
        for fn in contenders.values():
            fn()
    for i in range(steps):
        for name in (list(contenders)[i % 3:] + list(contenders)[:i % 3]):
            start = time.perf_counter()
            contenders[name]()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        print(f"  {name:24s} {1e3 * statistics.median(t):7.2f} ms per forward+backward step (K={K}, batch {bs})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "digits-ae.yaml")
    ap.add_argument("--k", type=int, default=24, help="models (seeds) trained")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="rounds, alternating which contender goes first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check", action="store_true", help="verify fused members equal their solo runs")
    ap.add_argument("--vmap", action="store_true", help="also time the step against torch.func vmap")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = pipeline.resolve_device("auto")
    cfgs = configs(args.config, args.k, args.epochs)
    data = load_dataset(cfgs[0].data)
    tensors = pipeline.tensors(data, device)
    load_before = os.getloadavg()
    print(f"{args.config.name}: K={args.k} seeds x {args.epochs} epochs, batch {cfgs[0].train.batch_size}, "
          f"{len(data.x_train)} training samples, device {device}, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load_before)}")
    fused(cfgs[:2], data, device, tensors)  # warm-up: imports, first kernels
    seq_t, fus_t = [], []
    for r in range(args.rounds):
        order = [("fused", fused), ("sequential", sequential)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            seconds, runs = fn(cfgs, data, device, tensors)
            (fus_t if name == "fused" else seq_t).append(seconds)
            if name == "fused":
                fused_runs = runs
            else:
                solo_runs = runs
        print(f"round {r + 1} ({order[0][0]} first): sequential {seq_t[-1]:7.2f} s, fused {fus_t[-1]:7.2f} s, "
              f"ratio {seq_t[-1] / fus_t[-1]:5.1f}x   load {os.getloadavg()[0]:.2f}")
    s, f = statistics.median(seq_t), statistics.median(fus_t)
    per_hour = lambda t: 3600 * args.k / t
    print(f"median: sequential {s:.2f} s ({per_hour(s):,.0f} trials/h), fused {f:.2f} s ({per_hour(f):,.0f} "
          f"trials/h): fused is {s / f:.1f}x faster")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.check:
        print(f"check: {check(fused_runs, solo_runs)}")
    if args.vmap:
        step_micro(cfgs, data, device, tensors)


if __name__ == "__main__":
    main()
