"""What an architecture study writes beside the usual study outputs.

```
STUDY_DIR/
  evolution.md          per-generation table, the best individual's lineage,
                        the Pareto archive, duplicates and skipped mutations
  architectures.csv     one row per evaluated architecture (generation, parent, how, ...)
  best-config.yaml      the best architecture as a ready config (``aelab train`` it)
  figures/<metric>_by_generation.png, figures/<metric>_vs_layers.png
```
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import optuna
import yaml

from ... import plots
from ...atomic import write_text
from ...report import format_value as _f
from ...runs import load_run
from .history import Member, fitness, key, members, pareto_ranks


def architecture_outputs(ctx, study: optuna.Study) -> list[Path]:
    """Write the files above; returns the figures written."""
    history = members(study)
    if not history:
        return []
    write_text(ctx.study_dir / "architectures.csv", architectures_csv(history, ctx))
    write_text(ctx.study_dir / "evolution.md", evolution_md(history, ctx))
    best = best_member(history, ctx.directions)
    if best is not None and best.attrs.get("runs"):
        write_text(ctx.study_dir / "best-config.yaml", best_config_yaml(best, ctx))
    return _figures(history, ctx)


def objective(m: Member, i: int = 0) -> float:
    return float(m.values[i]) if m.scored else math.nan


def best_member(history: list[Member], directions: list[str]) -> Member | None:
    """The best scored member (several objectives: the first objective's best on the Pareto front)."""
    scored = [m for m in history if m.scored]
    if not scored:
        return None
    if len(directions) > 1:
        ranks = pareto_ranks([fitness(m, directions) for m in scored])
        scored = [m for m, r in zip(scored, ranks) if r == 0]
    return min(scored, key=lambda m: (fitness(m, directions[:1]), m.index))


def lineage(best: Member, history: list[Member]) -> list[Member]:
    """``best`` and its ancestors, oldest first."""
    by_number = {m.number: m for m in history}
    chain, m = [best], best
    while m.parent is not None and m.parent in by_number and len(chain) <= len(history):
        m = by_number[m.parent]
        chain.append(m)
    return chain[::-1]


def generation_rows(history: list[Member], ctx) -> list[dict]:
    """Per generation: evaluated, failed, best and mean of the first objective,
    the best so far and the generation's best architecture."""
    metric, direction = next(iter(ctx.objectives.items()))
    rows, so_far = [], None
    for g in sorted({m.generation for m in history}):
        gen = [m for m in history if m.generation == g]
        scored = [m for m in gen if m.scored]
        top = min(scored, key=lambda m: fitness(m, ctx.directions[:1])) if scored else None
        if top is not None and (so_far is None or fitness(top, ctx.directions[:1]) < fitness(so_far, ctx.directions[:1])):
            so_far = top
        rows.append({"generation": g, "evaluated": len(gen), "failed": len(gen) - len(scored),
                     "best": objective(top) if top else math.nan,
                     "mean": sum(map(objective, scored)) / len(scored) if scored else math.nan,
                     "best_so_far": objective(so_far) if so_far else math.nan,
                     "best_architecture": top.arch.label() if top else "—"})
    return rows


def evolution_md(history: list[Member], ctx) -> str:
    metric, direction = next(iter(ctx.objectives.items()))
    distinct = len({m.arch.canonical() for m in history})
    duplicates = sum("duplicate_of" in m.attrs for m in history)
    skipped = [(m, s) for m in history for s in m.attrs.get("skipped", [])]
    lines = [f"# Architecture study `{ctx.name}`", "",
             f"Strategy **{ctx.strategy}**, population {ctx.proposer.spec.population}, objective(s) "
             + ", ".join(f"`{k}` ({v})" for k, v in ctx.objectives.items()) + ". "
             f"{len(history)} architectures evaluated, {distinct} distinct (trained); "
             f"{duplicates} were already evaluated and reused their runs; "
             f"{sum(not m.scored and m.done for m in history)} failed.", "",
             f"## Generations (`{metric}`, {'lower' if direction == 'min' else 'higher'} is better)", "",
             "| generation | evaluated | failed | best | mean | best so far | best architecture |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['generation']} | {r['evaluated']} | {r['failed']} | {_f(r['best'])} | {_f(r['mean'])} | "
              f"{_f(r['best_so_far'])} | {r['best_architecture']} |" for r in generation_rows(history, ctx)]
    best = best_member(history, ctx.directions)
    if best is not None:
        lines += ["", "## Lineage of the best architecture", "",
                  "| trial | generation | how it was made | architecture | " + f"`{metric}` |", "|---|---|---|---|---|"]
        lines += [f"| {m.number} | {m.generation} | {m.how} | {m.arch.label()} | {_f(objective(m))} |"
                  for m in lineage(best, history)]
    if len(ctx.objectives) > 1:
        lines += _pareto_archive(history, ctx)
    if skipped:
        lines += ["", "## Skipped mutations (infeasible or outside the space)", ""]
        lines += [f"- trial {m.number}: {s}" for m, s in skipped[:50]]
    return "\n".join(lines) + "\n"


def _pareto_archive(history: list[Member], ctx) -> list[str]:
    scored = [m for m in history if m.scored]
    ranks = pareto_ranks([key(list(m.values), ctx.directions) for m in scored])
    front = sorted((m for m, r in zip(scored, ranks) if r == 0), key=lambda m: fitness(m, ctx.directions))
    names = list(ctx.objectives)
    lines = ["", f"## Pareto archive ({len(front)} architectures)", "",
             "| trial | architecture | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    return lines + [f"| {m.number} | {m.arch.label()} | " + " | ".join(_f(v) for v in m.values) + " |"
                    for m in front]


def architectures_csv(history: list[Member], ctx) -> str:
    names = list(ctx.objectives)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "index", "generation", "slot", "parent", "how", "architecture", "kind", "conv",
                "dense", "activation", "latent_dim", "layers", "state", *names, "duplicate_of"])
    for m in history:
        a = m.arch
        w.writerow([m.number, m.index, m.generation, _blank(m.slot), _blank(m.parent), m.how, a.label(), a.kind,
                    " ".join(map(str, a.conv)), " ".join(map(str, a.dense)), a.activation, a.latent_dim,
                    a.layers, m.state.name.lower(), *[repr(objective(m, i)) if m.scored else ""
                                                       for i in range(len(names))],
                    _blank(m.attrs.get("duplicate_of"))])
    return buf.getvalue()


def best_config_yaml(best: Member, ctx) -> str:
    """The best trial's first run's config, renamed, as a file ``aelab train`` accepts."""
    cfg = load_run(ctx.study_dir / best.attrs["runs"][0]).config.model_dump(mode="json")
    cfg["name"] = f"{ctx.name}-best"
    head = (f"# Best architecture of study '{ctx.name}' (trial {best.number}, {best.arch.label()}):\n"
            + "".join(f"#   {k} = {_f(v)}\n" for k, v in zip(ctx.objectives, best.values)))
    return head + yaml.safe_dump(cfg, sort_keys=False)


def _figures(history: list[Member], ctx) -> list[Path]:
    scored = [m for m in history if m.scored]
    if not scored:
        return []
    folder = ctx.study_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    metric, direction = next(iter(ctx.objectives.items()))
    values = [objective(m) for m in scored]
    title = f"{ctx.name}: {ctx.strategy}"
    return [
        plots.save_generation_curve([m.generation for m in scored], values, direction,
                                    folder / f"{metric}_by_generation.png", ylabel=metric, title=title),
        plots.save_metric_vs_param([m.arch.layers for m in scored], values, folder / f"{metric}_vs_layers.png",
                                   xlabel="number of layers", ylabel=metric, categorical=True,
                                   order=sorted({m.arch.layers for m in scored}),
                                   title=f"{metric} by number of layers ({title})"),
    ]


def _blank(v) -> str:
    return "" if v is None else str(v)
