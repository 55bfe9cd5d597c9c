"""The configs and studies aelab ships, reachable by name from anywhere.

They live inside the package (``aelab/shipped/configs/*.yaml`` and
``aelab/shipped/studies/*.yaml``; the repository's top-level ``configs/``
and ``studies/`` point here), so an installed wheel runs ``aelab train
mnist-vae`` or ``aelab study run optimizers`` from any directory.  A path
that exists always wins over a shipped name.  Each file's first comment
line is its description (``aelab configs``).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ConfigError

KINDS = {"config": "configs", "study": "studies"}
SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Shipped:
    """One shipped file: its kind (config or study), name, path and description."""

    kind: str
    name: str
    path: Path
    description: str


def folder(kind: str) -> Path:
    """Where the shipped files of ``kind`` are."""
    return Path(str(resources.files(__name__) / KINDS[kind]))


def catalog() -> list[Shipped]:
    """Every shipped config and study, sorted by kind and name."""
    return [s for kind in KINDS for s in shipped(kind)]


def shipped(kind: str) -> list[Shipped]:
    """The shipped files of one kind (config or study), sorted by name."""
    return [Shipped(kind, p.stem, p, _description(p)) for p in sorted(folder(kind).iterdir()) if p.suffix in SUFFIXES]


def _description(path: Path) -> str:
    """The file's leading comment, its first sentence cut to 80 characters."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    end = text.find(". ")
    text = text[:end] if end >= 0 else text.rstrip(".")
    return text if len(text) <= 80 else text[:79].rsplit(" ", 1)[0].rstrip(",;:(-") + " …"


def resolve(source, kind: str = "config"):
    """``source`` unchanged when it is not a string or path, or names a file
    that exists; else the shipped file of that name (``mnist-vae`` or
    ``mnist-vae.yaml``).  A bare name that is neither is one line listing
    what is shipped."""
    if not isinstance(source, (str, Path)):
        return source
    p = Path(source)
    if p.exists() or len(p.parts) != 1:
        return p
    for candidate in (folder(kind) / p.name, *(folder(kind) / f"{p.name}{s}" for s in SUFFIXES)):
        if candidate.is_file():
            return candidate
    names = ", ".join(s.name for s in shipped(kind))
    raise ConfigError(f"{p}: no such file, and no shipped {kind} of that name (shipped: {names})")
