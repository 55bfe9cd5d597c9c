"""Evidence for docs/architecture-search.md: the VAE article's rule, aging
evolution, random search and TPE on the same architecture space and the same
budget of trained models, with each of the article's two fitnesses
(k-means silhouette of the latent codes, validation loss), over 3 seeds.

    python scripts/arch_evidence.py [--budget 12] [--population 4] [--out runs/arch-evidence]

Every search is an ordinary study (``studies/arch-article.yaml`` with the
strategy, seed and objective swapped), so each one's evolution.md, figures
and runs are kept under ``--out``.  Prints the table as Markdown and writes
it to ``OUT/table.md``.
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from pathlib import Path

import torch
import yaml

from aelab.studies import run_study
from aelab.studies.architecture.history import members
from aelab.studies.executors import LocalExecutor
from aelab.studies.runner import create_or_load
from aelab.studies.run import prepare

ROOT = Path(__file__).resolve().parents[1] / "studies"  # the shipped study files
STRATEGIES = ["article-rule", "aging-evolution", "random", "tpe"]
FITNESS = {"silhouette": "max", "val_loss": "min"}
# short runs so that 4 strategies x 2 fitnesses x 3 seeds x budget models fit in ~half an hour
FAST = ["train.epochs=5", "data.samples=2000", "eval.max_samples=400"]


def spec_for(strategy: str, seed: int, metric: str, budget: int, population: int) -> dict:
    spec = yaml.safe_load((ROOT / "arch-article.yaml").read_text())
    spec = copy.deepcopy(spec)
    spec.update(name=f"{strategy}-{metric}-s{seed}", strategy=strategy, seed=seed, trials=budget,
                objectives={metric: FITNESS[metric]}, set=FAST)
    spec["base"] = str(ROOT / spec["base"])
    spec["architecture"]["population"] = population
    return spec


def best(values: list[float], direction: str) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return (min if direction == "min" else max)(finite) if finite else math.nan


def search(strategy: str, seed: int, metric: str, args) -> dict:
    spec = spec_for(strategy, seed, metric, args.budget, args.population)
    out = args.out / spec["name"]
    start = time.perf_counter()
    run_study(spec, out=out, executor=LocalExecutor(1, threads=1))  # 1 thread: no spinning on a shared machine
    history = members(create_or_load(prepare(spec, out)))
    values = [float(m.values[0]) for m in history if m.scored]
    return {"best": best(values, FITNESS[metric]), "distinct": len({m.arch.canonical() for m in history}),
            "failed": sum(not m.scored for m in history), "seconds": time.perf_counter() - start}


def pm(xs: list[float]) -> str:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return "—"
    return f"{statistics.fmean(xs):.4g} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2g}"


def table(results: dict, seeds: list[int]) -> str:
    lines = ["| strategy | best silhouette ↑ | best val_loss ↓ | distinct models trained (of budget) | "
             "failed | minutes per search |", "|---|---|---|---|---|---|"]
    for s in STRATEGIES:
        runs = [results[(s, m, seed)] for m in FITNESS for seed in seeds]
        lines.append(f"| {s} | {pm([results[(s, 'silhouette', k)]['best'] for k in seeds])} | "
                     f"{pm([results[(s, 'val_loss', k)]['best'] for k in seeds])} | "
                     f"{statistics.fmean(r['distinct'] for r in runs):.1f} | "
                     f"{sum(r['failed'] for r in runs)} | {statistics.fmean(r['seconds'] for r in runs) / 60:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=12)
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/arch-evidence"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    results = {}
    for metric in FITNESS:
        for seed in seeds:
            for s in STRATEGIES:
                results[(s, metric, seed)] = r = search(s, seed, metric, args)
                print(f"{s:16s} {metric:10s} seed {seed}: best {r['best']:.4g}, {r['distinct']} distinct, "
                      f"{r['seconds']:.0f}s", flush=True)
    text = table(results, seeds)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
