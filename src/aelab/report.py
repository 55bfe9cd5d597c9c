"""``report.md``: a run summarized for a reader, linking its figures."""
from __future__ import annotations

import math
from pathlib import Path

from .runs import Run

_ORDER = ["status", "recon_mse", "recon_mae", "recon_bce", "elbo", "recon_term", "kl",
          "silhouette", "nmi", "ari", "cluster_acc", "knn_acc", "trustworthiness",
          "accuracy", "test_loss", "epochs_trained", "best_epoch", "parameters", "seconds"]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "—" if not math.isfinite(v) else f"{v:.4g}"
    return "—" if v is None else str(v)


def metrics_table(metrics: dict) -> str:
    keys = [k for k in _ORDER if k in metrics] + sorted(k for k in metrics if k not in _ORDER)
    rows = "\n".join(f"| `{k}` | {_fmt(metrics[k])} |" for k in keys)
    return "| metric | value |\n|---|---|\n" + rows


def render_report(run: Run, figures: list[str]) -> str:
    """Markdown for ``run`` (config essentials, metrics, figures)."""
    c = run.config
    enc = ", ".join(_layer(l) for l in c.model.encoder) or "—"
    lines = [
        f"# Run `{run.path.name}`", "",
        f"- **model**: {c.model.kind}, encoder [{enc}], latent {c.model.latent_dim}, "
        f"decoder {'mirror' if c.model.decoder == 'mirror' else 'explicit'}, "
        f"{run.model_info.get('parameters', '?')} parameters",
        f"- **data**: {c.data.name} ({c.data.normalize}), split seed {c.data.seed}",
        f"- **training**: {c.train.optimizer} lr {c.train.lr:g}, batch {c.train.batch_size}, "
        f"{c.train.epochs} epochs, loss {c.train.loss}, seed {c.train.seed}", "",
        "## Metrics", "", metrics_table(run.metrics), "",
    ]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    lines += ["Full configuration: [config.yaml](config.yaml) · per-epoch losses: [history.csv](history.csv)", ""]
    return "\n".join(lines)


def _layer(layer) -> str:
    if layer.type == "dense":
        return str(layer.units)
    if layer.type in ("conv2d", "conv-transpose2d"):
        return f"{layer.type} {layer.filters}x{layer.kernel}"
    return layer.type
