"""A study's figures, written into ``STUDY_DIR/figures/``.

* ``bar_<metric>.png`` -- each objective per configuration, mean ± std over
  seeds (the optimizer lesson's bar chart);
* ``reconstructions.png`` -- the same test images reconstructed by every
  configuration, one row each (the hidden-layer article's "outputs of all
  models in one picture");
* ``latent_spaces.png`` -- every configuration's latent codes side by side;
* ``<metric>_vs_<param>.png`` -- the first objective against each searched
  parameter, one point per trained run;
* ``pareto.png`` -- with two or more objectives, every trial on the first
  two, the Pareto-optimal ones highlighted.

Only complete trials count; a figure with nothing to show is skipped.  The
model figures use the first run of each configuration (at most
:data:`MAX_CONFIGS`); rendering lives in :mod:`aelab.plots`.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import plots
from ..models.family import DECODE, EMBED, GENERATIVE, family
from ..data import Dataset, load_dataset
from ..errors import AelabError
from ..evaluation import eval_split, predict
from ..generation import draw
from ..runs import load_model, load_run
from .results import Group, TrialRow, groups
from .context import StudyContext
from .space import label_of, short_key

MAX_CONFIGS = 20  # rows / panels of the model figures (a zoo study's families): more would be unreadable
ARCH_CONFIGS = 6  # architecture studies: the best few
N_IMAGES = 10


@dataclass
class _Outputs:
    """One configuration's first run evaluated on its data's evaluation split."""

    name: str
    x: np.ndarray
    y: np.ndarray | None
    x_hat: np.ndarray
    z: np.ndarray
    samples: np.ndarray | None = None  # N_IMAGES prior samples (seed 0) of a generative model


def study_figures(study_dir: Path, rows: list[TrialRow], ctx: StudyContext, best: list[int]) -> list[Path]:
    """Write every figure that has data into ``study_dir/figures``; returns their paths."""
    complete = [r for r in rows if r.state == "complete" and r.per_seed]
    if not complete:
        return []
    folder = Path(study_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = _bar_charts(folder, rows, ctx) if not ctx.proposer.many else []
    outputs = _model_outputs(Path(study_dir), _shown(groups(rows), ctx))
    if outputs:
        paths.append(_reconstructions(folder, outputs))
        if sum(o.samples is not None for o in outputs) > 1:  # generators to compare
            paths.append(_samples(folder, outputs))
        paths.append(plots.save_latent_panels(
            [(o.name, o.z, o.y) for o in outputs], folder / "latent_spaces.png",
            title="Latent codes of each configuration (first seed, evaluation split)"))
    paths += _metric_vs_params(folder, complete, ctx)
    if len(ctx.objectives) >= 2:
        paths += _pareto(folder, complete, ctx, best)
    return paths


def _wrap(label: str) -> str:
    """A configuration label with one ``field=value`` per line, so long labels stay readable."""
    return label.replace(", ", "\n") or "(base)"


def _values_only(values: dict) -> str:
    """``sgd, linear`` for ``optimizer=sgd, output_activation=linear``: short tick labels
    (the field names go into the title once) that fit under a bar."""
    return ", ".join(label_of({"": v}).removeprefix("=") for v in values.values()) or "(base)"


def _bar_charts(folder: Path, rows: list[TrialRow], ctx: StudyContext) -> list[Path]:
    """One bar chart per objective: bars are configurations, error bars ±1 std over seeds."""
    fields = ", ".join(short_key(p.key) for p in ctx.params) or "configuration"
    paths = []
    for metric, direction in ctx.objectives.items():
        data = {_values_only(g.values): [m[metric] for m in g.per_seed if metric in m] for g in groups(rows)}
        data = {k: v for k, v in data.items() if any(math.isfinite(x) for x in v)}
        if data:
            paths.append(plots.save_bar_chart(data, folder / f"bar_{metric}.png",
                                              ylabel=f"{metric} ({_arrow(direction)})",
                                              title=f"{metric} by {fields}\n(mean ± std over seeds)"))
    return paths


def _shown(gs: list[Group], ctx: StudyContext) -> list[Group]:
    """The configurations drawn side by side: in file order, or for an
    architecture study (hundreds of them) the best by the first objective."""
    gs = [g for g in gs if g.runs]
    if not ctx.proposer.many:
        return gs[:MAX_CONFIGS]
    metric, direction = next(iter(ctx.objectives.items()))
    sign = 1.0 if direction == "min" else -1.0
    score = lambda g: sign * g.stats(metric)[0] if g.stats(metric)[2] else math.inf
    return sorted(gs, key=score)[:ARCH_CONFIGS]


def _model_outputs(study_dir: Path, gs: list[Group]) -> list[_Outputs]:
    """Each group's first run, rebuilt and run on its evaluation split (autoencoders only).

    Data sets are loaded once per distinct data spec; a run that cannot be
    read back is skipped with a warning rather than failing the study's outputs.
    """
    cache: dict[str, Dataset] = {}
    out = []
    for g in gs:
        try:
            run = load_run(study_dir / g.runs[0])
            fam = family(run.config.model.kind)
            if not (fam.has(EMBED) and fam.has(DECODE)):  # nothing to reconstruct or place in a plane
                continue
            key = json.dumps(run.config.data.model_dump(mode="json"), sort_keys=True)
            data = cache[key] if key in cache else cache.setdefault(key, load_dataset(run.config.data))
            model = load_model(run.path)
        except AelabError as e:
            warnings.warn(f"study figures: skipping {g.config}: {e}", stacklevel=2)
            continue
        x, y, _ = eval_split(data)
        pred = predict(model, x, torch.device("cpu"), y=y)
        with torch.no_grad():
            samples = draw(model, N_IMAGES, 0, torch.device("cpu"))[0] if fam.has(GENERATIVE) else None
        out.append(_Outputs(g.config or "(base)", x, y, pred["x_hat"], pred["z"], samples))
    return out


def _reconstructions(folder: Path, outputs: list[_Outputs]) -> Path:
    """Originals on top, then each configuration's reconstructions of the same images."""
    originals, _, labels = plots.reconstruction_grid_data(outputs[0].x, outputs[0].x_hat, n=N_IMAGES,
                                                          y=outputs[0].y)
    rows = [("original", originals)]
    for o in outputs:
        rows.append((_wrap(o.name), plots.reconstruction_grid_data(o.x, o.x_hat, n=N_IMAGES, y=o.y)[1]))
    return plots.save_reconstruction_rows(rows, folder / "reconstructions.png",
                                          title="Originals (top) and each configuration's reconstructions",
                                          col_labels=None if labels is None else list(labels))


def _samples(folder: Path, outputs: list[_Outputs]) -> Path:
    """Each generative configuration's decoded prior draws, one row each (the same seed)."""
    rows = [(_wrap(o.name), o.samples) for o in outputs if o.samples is not None]
    return plots.save_reconstruction_rows(rows, folder / "samples.png",
                                          title="Each configuration's samples from its prior (first seed, seed 0)")


def _metric_vs_params(folder: Path, complete: list[TrialRow], ctx: StudyContext) -> list[Path]:
    """The first objective against each searched parameter, one point per seed."""
    metric = next(iter(ctx.objectives))
    names = [short_key(p.key).replace(",", "+") for p in ctx.params]
    paths = []
    for p, name in zip(ctx.params, names):
        stem = name if names.count(name) == 1 else p.key.replace(".", "_")
        pairs = [(r.values[p.key], m[metric]) for r in complete if p.key in r.values
                 for m in r.per_seed if metric in m and math.isfinite(m[metric])]
        if not pairs:
            continue
        xs, ys = zip(*pairs)
        categorical = p.domain == "categorical"
        paths.append(plots.save_metric_vs_param(
            list(xs), list(ys), folder / f"{metric}_vs_{stem}.png", xlabel=p.key, ylabel=metric,
            categorical=categorical, log=p.log, order=p.shown_choices if categorical else None,
            title=f"{metric} ({_arrow(ctx.objectives[metric])}) by {p.key}"))
    return paths


def _arrow(direction: str) -> str:
    return "↓ min" if direction == "min" else "↑ max"


def _pareto(folder: Path, complete: list[TrialRow], ctx: StudyContext, best: list[int]) -> list[Path]:
    """The first two objectives of every complete trial, the Pareto front highlighted."""
    (m1, d1), (m2, d2) = list(ctx.objectives.items())[:2]
    points = np.array([[r.mean(m1), r.mean(m2)] for r in complete], dtype=float)
    if not np.isfinite(points).all(axis=1).any():
        return []
    front = {complete[i].number for i in plots.pareto_data(points, (d1, d2))["front"]}
    if best and len(ctx.objectives) == 2 and front != set(best):
        warnings.warn(f"study figures: Pareto front {sorted(front)} differs from Optuna's best trials "
                      f"{sorted(best)}", stacklevel=2)
    labels = [f"#{r.number} {r.config}" for r in complete]
    more = f" (first 2 of {len(ctx.objectives)} objectives)" if len(ctx.objectives) > 2 else ""
    return [plots.save_pareto(points, (d1, d2), folder / "pareto.png", labels=labels, xlabel=m1, ylabel=m2,
                              title=f"Trials (mean over seeds) and the Pareto front{more}")]
