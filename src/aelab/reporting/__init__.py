"""Self-contained HTML reports (``aelab report DIR``) for runs, studies and
latent-space-optimization outputs."""
from __future__ import annotations

from pathlib import Path

from ..atomic import write_text
from ..outdir import check_file
from .render import render_html
from .sources import detect_kind, lso_context, run_context, study_context

REPORT_HTML = "report.html"
_CONTEXTS = {"run": run_context, "study": study_context, "lso": lso_context}


def write_html_report(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for a run, study or LSO directory (atomically);
    returns its path.  ``out`` overrides where it goes."""
    path = Path(directory)
    kind = detect_kind(path)
    target = check_file(Path(out) if out else path / REPORT_HTML)
    html = render_html(_CONTEXTS[kind](path))
    write_text(target, html)
    return target


__all__ = ["write_html_report", "detect_kind", "REPORT_HTML"]
