"""``report.html``: one self-contained file rendered with Jinja2.

Figures are inlined as base64 ``data:`` URIs and the CSS sits in the page,
so the file opens offline in any browser and can be mailed around alone.
"""
from __future__ import annotations

import base64
import mimetypes
import time
from pathlib import Path

import jinja2

from ..version import __version__

_MIME = {".svg": "image/svg+xml", ".gif": "image/gif", ".png": "image/png", ".webp": "image/webp"}


def data_uri(path: Path) -> str:
    """``data:<mime>;base64,...`` for the file at ``path``."""
    mime = _MIME.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def environment() -> jinja2.Environment:
    """Templates are package data (``aelab/reporting/templates``), autoescaped."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("aelab.reporting", "templates"),
                             autoescape=jinja2.select_autoescape(default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["data_uri"] = data_uri
    env.filters["caption"] = lambda p: Path(p).stem.replace("_", " ")
    return env


def render_html(context: dict) -> str:
    """The page for a run, study or LSO context (see :mod:`.sources`)."""
    template = environment().get_template(f"{context['kind']}.html.j2")
    return template.render(**context, version=__version__,
                           generated=time.strftime("%Y-%m-%d %H:%M", time.localtime()))
