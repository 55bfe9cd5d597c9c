"""``report.md``: a run summarized for a reader, linking its figures."""
from __future__ import annotations

import math
from pathlib import Path

from .runs import Run

_ORDER = ["status", "recon_mse", "recon_mae", "recon_bce", "elbo", "recon_term", "kl",
          "silhouette", "nmi", "ari", "cluster_acc", "knn_acc", "trustworthiness",
          "accuracy", "test_loss", "epochs_trained", "best_epoch", "parameters", "seconds"]


def format_value(v) -> str:
    """A metric for a table: 4 significant digits, "—" for missing or non-finite."""
    if isinstance(v, float):
        return "—" if not math.isfinite(v) else f"{v:.4g}"
    return "—" if v is None else str(v)


def metric_rows(metrics: dict) -> list[tuple[str, str]]:
    """(name, formatted value) in reading order; shared by report.md and report.html."""
    keys = [k for k in _ORDER if k in metrics] + sorted(k for k in metrics if k not in _ORDER)
    return [(k, format_value(metrics[k])) for k in keys]


def metrics_table(metrics: dict) -> str:
    rows = "\n".join(f"| `{k}` | {v} |" for k, v in metric_rows(metrics))
    return "| metric | value |\n|---|---|\n" + rows


def overview_rows(run: Run) -> list[tuple[str, str]]:
    """The config essentials as (label, text): model (in its family's words),
    data, training."""
    c = run.config
    return [
        ("model", c.model.describe(run.model_info)),
        ("data", f"{c.data.name} ({c.data.normalize}), split seed {c.data.seed}"),
        ("training", training_line(run)),
    ]


def training_line(run: Run) -> str:
    """What the trainer did, in its own terms (epochs and optimizer for
    gradient descent, generations, population and strategy for GA/ES), and
    how far it got: the method's own one-line summary."""
    return run.config.train.summary(run.metrics.get("epochs_trained"))


def render_report(run: Run, figures: list[str]) -> str:
    """Markdown for ``run`` (config essentials, metrics, figures)."""
    lines = [f"# Run `{run.path.name}`", "", *[f"- **{k}**: {v}" for k, v in overview_rows(run)], "",
             "## Metrics", "", metrics_table(run.metrics), ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    lines += ["Full configuration: [config.yaml](config.yaml) · per-epoch losses: [history.csv](history.csv)", ""]
    return "\n".join(lines)


