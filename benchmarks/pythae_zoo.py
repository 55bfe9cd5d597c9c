"""Side by side with Pythae 0.1.2: every family both libraries have, on the
same networks, data, optimizer, batch size, epochs and loss, alternating
epoch by epoch in one process.

    python benchmarks/pythae_zoo.py [--families vae,wae] [--epochs 10] [--seeds 3]
                                    [--threads T] [--judge RUN_DIR] [--json out.json]

Rows (``benchmarks/_pythae_rows.py``, one entry per family): ae (Pythae AE),
vae (VAE), betavae (BetaVAE, beta 4), wae (WAE_MMD), infovae (INFOVAE_MMD),
aae (Adversarial_AE), factorvae (FactorVAE), rae (RAE_L2), rae-gp (RAE_GP:
always skipped, Pythae's penalty is another one), iwae (IWAE), vamp (VAMP),
tcvae (BetaTCVAE), dbvae (DisentangledBetaVAE) and vqvae (VQVAE).  A row
whose family or shipped config aelab lacks, or whose loss Pythae cannot
express, is skipped with the reason (never run on another loss).  Pythae's
VAEGAN is not a row (its equilibrium-gated updates are not matched).

For each row and seed: aelab's model is built from the row's shipped config
(``aelab.pipeline.build``, mnist-5k: 4,000 training and 1,000 test images
as aelab's data loader splits them); Pythae gets deep copies of its encoder
and decoder modules (the same initial weights) wrapped as Pythae
``BaseEncoder``/``BaseDecoder``, inside the Pythae model the row names, with
the Pythae config fields that give the same objective.  Both train with
torch's Adam at the config's lr(s), betas and batch size for ``--epochs``
epochs: aelab through ``GradientTrainer.train_epoch`` (the adversarial
families: ``AdversarialTrainer._epoch``), Pythae through its own trainer's
``train_step(epoch)`` (``BaseTrainer``; ``CoupledOptimizerTrainer`` for
RAE-L2, ``AdversarialTrainer`` for the adversarial ones: its DataLoader,
forward, backward, step; only its tqdm bar removed).  The epochs alternate
aelab, Pythae, Pythae, aelab, ... so background load hits both alike; each
side keeps its own torch RNG stream.  Reported: the median epoch time of each over every epoch of
every seed, their ratio aelab/Pythae (target at most 1.0) and the median of
the per-epoch paired ratios.

Test metrics, computed for both models by the same code (a Pythae model is
scored through a thin adapter with aelab's model interface): reconstruction
MSE on the test split (``aelab.metrics.recon_mse``, decoding the mean code);
the family's bound where it has one, by aelab's own evaluation code
(``_pythae_side.bound``): the single-sample ELBO of
``aelab.evaluation.elbo_metrics`` (analytic KL, a fixed seed), the IWAE
bound with the family's k (``iwae.bound.split_bound``) or the ELBO with the
VampPrior (``vamp.family.vamp_elbo_metrics``); and with ``--judge``
(a completed classifier run, e.g. ``aelab train configs/mnist14-judge.yaml
--out runs/judge``) the FID of 1,000 prior samples on the judge's features
(``aelab.yardsticks.frechet_distance``, as ``aelab.generation.judged``).  The shipped judge takes 14x14 images: both
models' 28x28 samples are downsampled with aelab's own resize (bilinear,
antialiased), the operation that made the judge's data, and compared with
the judge's own test split (the same images).  Over ``--seeds`` seeds each
metric is given as mean +- std; aelab is "within" Pythae's spread when its
mean lies in Pythae's mean +- 2 std.

Defaults (every row, 10 epochs, 3 seeds) took 607 s with ``--threads 1``
on the 2-CPU Xeon while other processes kept 1.0 CPU busy; the test
metrics are the same numbers run after run (fixed seeds, one thread).
Runs unchanged on CUDA (the device is auto-detected; times are
synchronized).  Without Pythae (``pip install pythae==0.1.2``; ``make
bench`` installs it) the script prints one line and exits 0.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _pythae_rows import NETWORK, ROWS, Mismatch, by_name  # noqa: E402  (no torch, no pythae)

TARGET = 1.0
FID_SAMPLES = 1000


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", default=",".join(r.name for r in ROWS),
                   help=f"comma-separated rows (default all: {', '.join(r.name for r in ROWS)})")
    p.add_argument("--epochs", type=int, default=10, help="epochs per side per seed (default 10)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: usable CPUs)")
    p.add_argument("--judge", metavar="RUN_DIR", help="a completed classifier run: FID of prior samples")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name()]
    if unknown:
        p.error(f"--families: unknown {', '.join(unknown)}; expected some of {', '.join(by_name())}")
    if args.epochs < 1 or args.seeds < 1:
        p.error("--epochs and --seeds: expected at least 1")
    args.rows = [by_name()[n] for n in names]
    return args


# ------------------------------------------------------------ one row

def row_config(row, epochs: int, seed: int):
    """The row's aelab config: its shipped config, the model section
    replaced when the row says so (the network kept), epochs and seed set."""
    from aelab.shipped import resolve
    from aelab.spec import load_config, read_mapping
    try:
        raw = read_mapping(resolve(row.config, "config"))
    except Exception as e:  # noqa: BLE001 -- a family whose config is not shipped yet
        raise Mismatch(f"no shipped config {row.config} ({str(e).splitlines()[0]})") from None
    if row.model is not None:
        raw["model"] = {k: v for k, v in raw["model"].items() if k in NETWORK} | row.model
    return load_config(raw, [*row.overrides, f"train.epochs={epochs}", f"train.seed={seed}"])


class Judge:
    """The judge run's classifier and its features of the real images (the
    rows' images at its size, computed once); the FID of a model's prior samples."""

    def __init__(self, run_dir: str, data_spec):
        from aelab import yardsticks as Y
        from aelab.data import load_dataset
        from aelab.generation import judge_outputs, load_classifier
        from aelab.runs import load_run
        self.model, self.shape = load_classifier(run_dir)
        spec = load_run(run_dir).config.data
        if spec.model_dump(exclude={"resize"}) != data_spec.model_dump(exclude={"resize"}):
            raise Mismatch(f"--judge {run_dir}: trained on other data than the rows ({spec.name})")
        data = load_dataset(spec)
        self.test = judge_outputs(self.model, data.x_test)[1]
        self.floor = Y.fid_pair(self.test, self.test, judge_outputs(self.model, data.x_train)[1], 0)["fid_real_floor"]

    def fid(self, model, seed: int, device) -> dict:
        """aelab.generation's FID (``judged``) on ``FID_SAMPLES`` prior samples, against the test features."""
        from aelab import yardsticks as Y
        from aelab.data.preprocess import resize
        from aelab.generation import draw, judge_outputs
        samples, _ = draw(model, FID_SAMPLES, seed, device)
        if tuple(samples.shape[1:]) != tuple(self.shape):
            samples = resize(samples, tuple(self.shape[1:]))  # the op that made the judge's data
        return {"fid": Y.frechet_distance(judge_outputs(self.model, samples)[1], self.test)}


def scores(model, row, cfg, data, device, k: int | None, judge, seed: int) -> dict:
    """Test metrics of an aelab model or an adapted Pythae one, by the same code."""
    from aelab import metrics as M
    from aelab.evaluation import predict
    from aelab.models.family import GENERATIVE, capabilities_of
    from _pythae_side import bound
    x = data.x_test
    out = {"recon_mse": M.recon_mse(x, predict(model, x, device)["x_hat"])}
    if row.bound is not None:  # an adversarial family names its reconstruction loss in the model section
        loss = getattr(cfg.model, "reconstruction", None) or cfg.train.loss
        out["bound"] = bound(row.bound, model, x, loss, device, seed, k)
    if judge is not None and GENERATIVE in capabilities_of(model):
        out |= judge.fid(model, seed, device)
    return out


def run_row(row, epochs: int, seed: int, device, datasets: dict, judge_dir, judges: dict, tmp: str) -> dict:
    """One seed of one row: both sides trained, epochs alternating, then scored."""
    from aelab.data import load_dataset
    from aelab.models.family import GENERATIVE
    from aelab.pipeline import build, tensors
    from _pythae_side import AelabSide, AsAelab, PythaeSide
    cfg = row_config(row, epochs, seed)
    key = cfg.data.model_dump_json()
    if key not in datasets:
        datasets[key] = load_dataset(cfg.data)
    data = datasets[key]
    model = build(cfg, data, device, warn=False)
    pythae = PythaeSide(row, model, cfg, data, device, tmp, epochs)  # copies the untrained modules
    aelab = AelabSide(model, cfg, tensors(data, device)[0], device)
    times = {"aelab": [], "pythae": []}
    for e in range(epochs):
        order = (("aelab", aelab), ("pythae", pythae)) if e % 2 == 0 else (("pythae", pythae), ("aelab", aelab))
        for name, side in order:
            times[name].append(side.run_epoch())
    judge = None
    if judge_dir is not None:
        if judge_dir not in judges:
            judges[judge_dir] = Judge(judge_dir, cfg.data)
        judge = judges[judge_dir]
    prior = GENERATIVE in model.capabilities and row.code != "vq"  # N(0, I) draws, or the VampPrior's
    k = pythae.fields.get("number_samples")
    return {"times": times,
            "aelab": scores(model, row, cfg, data, device, k, judge, 0),
            "pythae": scores(AsAelab(pythae.model, row.code, prior), row, cfg, data, device, k, judge, 0)}


# ------------------------------------------------------------ summaries

def spread(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def within(a: list[float], p: list[float]) -> bool | None:
    """aelab's mean inside Pythae's mean +- 2 std (None with one seed)."""
    mp, sp = spread(p)
    return None if sp != sp else abs(spread(a)[0] - mp) <= 2 * sp


def summarize(row, runs: list[dict]) -> dict:
    ta = [t for r in runs for t in r["times"]["aelab"]]
    tp = [t for r in runs for t in r["times"]["pythae"]]
    out = {"pythae_model": row.pythae, "config": row.config, "notes": row.notes,
           "aelab_ms": statistics.median(ta) * 1e3, "pythae_ms": statistics.median(tp) * 1e3,
           "paired_ratio": statistics.median(a / b for a, b in zip(ta, tp)), "epochs_timed": len(ta),
           "aelab_epoch_seconds": ta, "pythae_epoch_seconds": tp}
    out["ratio"] = out["aelab_ms"] / out["pythae_ms"]
    for metric in runs[0]["aelab"]:
        a, p = [r["aelab"][metric] for r in runs], [r["pythae"][metric] for r in runs]
        out[metric] = {"aelab": spread(a), "pythae": spread(p), "within": within(a, p),
                       "aelab_seeds": a, "pythae_seeds": p}
    return out


def _pm(pair, fmt: str) -> str:
    m, s = pair
    return f"{m:{fmt}}" + ("" if s != s else f"±{s:{fmt}}")


def _cell(s: dict, metric: str, fmt: str) -> str:
    if metric not in s:
        return "-"
    m = s[metric]
    flag = {True: "", False: "*", None: ""}[m["within"]]
    return f"{_pm(m['aelab'], fmt)}{flag} / {_pm(m['pythae'], fmt)}"


def print_table(stats: dict, skipped: dict) -> None:
    head = (f"{'family':<8} {'pythae':<20} {'aelab ms':>9} {'pythae ms':>9} {'ratio':>6} {'paired':>6}  "
            f"{'recon MSE x1e3 aelab / pythae':<29}  {'bound aelab / pythae':<27}  {'FID aelab / pythae':<22}")
    print(head)
    print("-" * len(head))
    for name, s in stats.items():
        mse = {"recon_mse": {**s["recon_mse"],
                             "aelab": tuple(v * 1e3 for v in s["recon_mse"]["aelab"]),
                             "pythae": tuple(v * 1e3 for v in s["recon_mse"]["pythae"])}}
        print(f"{name:<8} {s['pythae_model']:<20} {s['aelab_ms']:>9.1f} {s['pythae_ms']:>9.1f} "
              f"{s['ratio']:>5.2f}x {s['paired_ratio']:>5.2f}x  {_cell(mse, 'recon_mse', '.2f'):<29}  "
              f"{_cell(s, 'bound', '.1f'):<27}  {_cell(s, 'fid', '.2f'):<22}")
    for name, why in skipped.items():
        print(f"{name:<8} skipped: {why}")
    print("ratio: of the medians; paired: median of per-epoch ratios (epoch i of both ran side by side).\n"
          "* aelab's mean outside Pythae's mean ± 2 std over the seeds.  bound: the test ELBO in nats "
          "(iwae: the k-sample bound; vamp: with the VampPrior)")


def main(argv=None) -> int:
    args = parse(argv)
    if find_spec("pythae") is None:
        print("pythae: not installed (pip install pythae==0.1.2, or make bench); nothing to compare")
        return 0
    import torch
    from epoch_time import cpu_snapshot, machine_info, other_cpu_load
    from _pythae_side import silence_pythae
    from aelab.models.family import kinds
    from aelab.pipeline import resolve_device
    from importlib.metadata import version

    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count() or 1)
    torch.set_num_threads(threads)
    silence_pythae()
    device = resolve_device("auto")
    info = machine_info(threads) | {"pythae": version("pythae"), "device": str(device),
                                    "loadavg_start": os.getloadavg()}
    print(f"aelab vs Pythae {info['pythae']}  {_dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine : {info['cpu']}, {info['usable_cpus']} usable CPUs, {threads} thread(s), device {device}, "
          f"load average {info['loadavg_start'][0]:.2f}")
    print(f"protocol: {args.epochs} epochs per side per seed, seeds 0..{args.seeds - 1}, epochs alternating",
          flush=True)
    have = set(kinds())
    skipped = {r.name: f"aelab has no family '{r.kind}' yet" for r in args.rows if r.kind not in have}
    rows = [r for r in args.rows if r.name not in skipped]
    stats, noise0, wall = {}, cpu_snapshot(), time.perf_counter()
    datasets, judges = {}, {}
    with tempfile.TemporaryDirectory(prefix="aelab-pythae-") as tmp:
        for row in rows:
            try:
                runs = [run_row(row, args.epochs, s, device, datasets, args.judge, judges, tmp)
                        for s in range(args.seeds)]
            except Mismatch as e:
                skipped[row.name] = str(e)
                print(f"  {row.name}: skipped ({e})", flush=True)
                continue
            stats[row.name] = summarize(row, runs)
            s = stats[row.name]
            print(f"  {row.name}: aelab {s['aelab_ms']:.0f} ms, pythae {s['pythae_ms']:.0f} ms per epoch "
                  f"({s['ratio']:.2f}x)", flush=True)
    noise = other_cpu_load(noise0)
    info["loadavg_end"] = os.getloadavg()
    print()
    print_table(stats, skipped)
    if judges:
        print(f"FID: {FID_SAMPLES} prior samples on the judge's features ({args.judge}), real-vs-real floor "
              f"{next(iter(judges.values())).floor:.2f}")
    met = [s["ratio"] <= TARGET for s in stats.values()]
    print(f"target aelab/pythae <= {TARGET}: met in {sum(met)} of {len(met)} rows")
    if noise is not None:
        print(f"noise: other processes kept {noise[0]:.2f} CPUs busy on average, hypervisor steal {noise[1]:.2f}; "
              f"load average {info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f}")
    print(f"total benchmark time {time.perf_counter() - wall:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": _dt.datetime.now().isoformat(timespec="seconds"), "machine": info, "epochs": args.epochs,
            "seeds": args.seeds, "judge": args.judge, "rows": stats, "skipped": skipped,
            "fid_real_floor": next(iter(judges.values())).floor if judges else None,
            "other_cpu_load": None if noise is None else noise[0]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
