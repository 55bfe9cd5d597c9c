"""A study's results read back from its storage: rows, CSV, summary.

One row per counted trial (retried and over-budget trials are left out, so
nothing is counted twice).  The summary groups rows by configuration and
reports each metric as mean ± std over every seed of that configuration.
"""
from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from .context import StudyContext, counted
from .space import label_of

SUMMARY_METRICS = ("recon_mse", "recon_mae", "elbo", "silhouette", "nmi", "ari", "cluster_acc", "knn_acc",
                   "trustworthiness", "accuracy", "seconds")


@dataclass
class TrialRow:
    number: int
    state: str
    values: dict[str, Any]              # config field -> value
    config: str                         # human label of ``values``
    per_seed: list[dict[str, float]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    seconds: float = math.nan
    fail_reason: str = ""

    def mean(self, metric: str) -> float:
        vals = [m[metric] for m in self.per_seed if metric in m]
        return statistics.fmean(vals) if vals else math.nan


def trial_rows(study: optuna.Study, ctx: StudyContext) -> list[TrialRow]:
    """Finished, counted trials in trial-number order."""
    rows = []
    for t in counted(study.get_trials(deepcopy=False)):
        if t.state not in (TrialState.COMPLETE, TrialState.FAIL):
            continue
        values = {p.key: p.shown(p.decode(t.params[p.key])) for p in ctx.params if p.key in t.params}
        if ctx.proposer.label_column:
            values = {ctx.proposer.label_column: t.user_attrs.get("config", "(not proposed)"), **values}
        rows.append(TrialRow(
            number=t.number, state="complete" if t.state == TrialState.COMPLETE else "failed",
            values=values, config=t.user_attrs.get("config") or label_of(values, ctx.params), per_seed=t.user_attrs.get("per_seed", []),
            runs=t.user_attrs.get("runs", []), seconds=t.user_attrs.get("seconds", math.nan),
            fail_reason=t.user_attrs.get("fail_reason", "")))
    return rows


def metric_names(rows: list[TrialRow], objectives: dict[str, str]) -> list[str]:
    seen = list(objectives)
    for r in rows:
        for m in r.per_seed:
            seen += [k for k in m if k not in seen]
    return seen


def results_csv(rows: list[TrialRow], ctx: StudyContext) -> str:
    """One line per trial: parameters, every metric (mean over seeds), status,
    and the trial's wall time (``trial_seconds``; ``seconds`` is the mean
    training time of its runs, as in their metrics.json)."""
    metrics = metric_names(rows, ctx.objectives)
    keys = value_keys(ctx)
    header = ["trial", "status", *keys, *metrics,
              *[f"{m}_std" for m in ctx.objectives], "repeats", "trial_seconds", "fail_reason", "runs"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        stds = [_std([m.get(o, math.nan) for m in r.per_seed]) for o in ctx.objectives]
        w.writerow([r.number, r.state, *[_cell(r.values.get(k)) for k in keys],
                    *[_cell(r.mean(m)) for m in metrics], *map(_cell, stds), len(r.per_seed),
                    _cell(r.seconds), r.fail_reason, ";".join(r.runs)])
    return buf.getvalue()


def value_keys(ctx: StudyContext) -> list[str]:
    """The columns that say what a trial trained: the searched fields, and the
    architecture in an architecture study."""
    column = ctx.proposer.label_column
    return ([column] if column else []) + [p.key for p in ctx.params]


def _std(vals: list[float]) -> float:
    vals = [v for v in vals if math.isfinite(v)]
    return statistics.stdev(vals) if len(vals) > 1 else (0.0 if vals else math.nan)


def _cell(v) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, (list, dict)):
        return label_of({"": v}).removeprefix("=")
    return "" if v is None else v


@dataclass
class Group:
    """Every seed of one configuration, across the trials that ran it."""

    config: str
    values: dict[str, Any]
    per_seed: list[dict[str, float]]
    runs: list[str]
    failed: int = 0

    def stats(self, metric: str) -> tuple[float, float, int]:
        vals = [m[metric] for m in self.per_seed if metric in m and math.isfinite(m[metric])]
        if not vals:
            return math.nan, math.nan, 0
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0), len(vals)


def groups(rows: list[TrialRow]) -> list[Group]:
    """Rows grouped by configuration, in order of first appearance."""
    out: dict[str, Group] = {}
    for r in rows:
        g = out.setdefault(r.config, Group(r.config, r.values, [], []))
        if r.state == "complete":
            g.per_seed += r.per_seed
            g.runs += r.runs
        else:
            g.failed += 1
    return list(out.values())


def summary_md(rows: list[TrialRow], ctx: StudyContext, best: list[int]) -> str:
    """Markdown: one line per configuration, mean ± std of each metric."""
    gs = groups(rows)
    metrics = [m for m in dict.fromkeys([*ctx.objectives, *SUMMARY_METRICS])
               if any(g.stats(m)[2] for g in gs)]
    head = "| configuration | seeds | " + " | ".join(_title(m, ctx.objectives) for m in metrics) + " |"
    lines = [f"# Study `{ctx.name}`", "",
             f"Strategy **{ctx.strategy}**, {len(rows)} trials "
             f"({sum(r.state == 'complete' for r in rows)} complete, "
             f"{sum(r.state == 'failed' for r in rows)} failed), {ctx.repeats} seed(s) per configuration. "
             f"Values are mean ± std over seeds.", "",
             head, "|" + "---|" * (len(metrics) + 2)]
    for g in gs:
        cells = [_pm(*g.stats(m)[:2]) for m in metrics]
        lines.append(f"| {g.config} | {g.stats(metrics[0])[2] if metrics else 0} | " + " | ".join(cells) + " |")
    failed = [r for r in rows if r.state == "failed"]
    if failed:
        lines += ["", "## Failed trials", ""] + [f"- trial {r.number} ({r.config}): {r.fail_reason}"
                                                 for r in failed]
    if best:
        lines += ["", "## Best", ""] + [f"- trial {r.number}: {r.config}" for r in rows if r.number in best]
    return "\n".join(lines) + "\n"


def _title(metric: str, objectives: dict[str, str]) -> str:
    arrow = {"min": " ↓", "max": " ↑"}.get(objectives.get(metric, ""), "")
    return f"`{metric}`{arrow}"


def _pm(mean: float, std: float) -> str:
    return "—" if math.isnan(mean) else f"{mean:.4g} ± {std:.2g}"


# ------------------------------------------------------------- a terminal

CONFIG_SHARE = 0.45  # of the width: the configuration column folds down to this before metrics are dropped


def summary_console(rows: list[TrialRow], ctx: StudyContext, best: list[int], width: int) -> list:
    """The summary for a terminal ``width`` columns wide, as Rich renderables:
    the same numbers as :func:`summary_md`, in a table that fits -- the
    objectives always, the other metrics while they fit (the rest named under
    it) -- then the failed trials and the best configuration(s), each a
    paragraph that wraps between words."""
    from rich import box
    from rich.table import Table
    from rich.text import Text
    gs = groups(rows)
    metrics = [m for m in dict.fromkeys([*ctx.objectives, *SUMMARY_METRICS]) if any(g.stats(m)[2] for g in gs)]
    best_configs = {r.config for r in rows if r.number in best}
    labels = [g.config + (" *" if g.config in best_configs else "") for g in gs]
    cells = {m: [_pm(*g.stats(m)[:2]) for g in gs] for m in metrics}
    shown = _fitting(metrics, cells, labels, ctx.objectives, width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("configuration", overflow="fold", min_width=_config_width(labels, width))
    table.add_column("seeds", justify="right", no_wrap=True)
    for m in shown:
        table.add_column(_plain_title(m, ctx.objectives), justify="right", no_wrap=True)
    for i, g in enumerate(gs):
        table.add_row(labels[i], str(g.stats(metrics[0])[2] if metrics else 0), *[cells[m][i] for m in shown])
    out: list = [Text(f"Study {ctx.name}: strategy {ctx.strategy}, {len(rows)} trials "
                      f"({sum(r.state == 'complete' for r in rows)} complete, "
                      f"{sum(r.state == 'failed' for r in rows)} failed), {ctx.repeats} seed(s) per "
                      f"configuration; mean ± std over seeds."), table]
    hidden = [m for m in metrics if m not in shown]
    if hidden:
        out.append(Text(f"Not shown at this width (see summary.md): {', '.join(hidden)}."))
    out += [Text(f"failed: trial {r.number} ({r.config}): {r.fail_reason}") for r in rows if r.state == "failed"]
    out += [Text(f"best (*): trial {r.number}: {r.config}") for r in rows if r.number in best]
    return out


def _fitting(metrics: list[str], cells: dict[str, list[str]], labels: list[str], objectives: dict[str, str],
             width: int) -> list[str]:
    """The metrics whose columns fit in ``width`` next to the configuration
    (folded to at most ``CONFIG_SHARE`` of it): objectives first, then in order."""
    used = _config_width(labels, width) + 1 + _widest("seeds", []) + 2
    shown = []
    for m in metrics:
        need = _widest(_plain_title(m, objectives), cells[m]) + 3  # the column, its padding and the gap
        if m in objectives or used + need <= width:
            shown.append(m)
            used += need
        else:
            break  # keep the order of summary.md: no column after one that was left out
    return shown


def _config_width(labels: list[str], width: int) -> int:
    return min(_widest("configuration", labels), max(24, int(width * CONFIG_SHARE)))


def _widest(title: str, cells: list[str]) -> int:
    return max([len(title), *map(len, cells)])


def _plain_title(metric: str, objectives: dict[str, str]) -> str:
    return _title(metric, objectives).replace("`", "")
