"""Fetch the IDX files of a built-in data set into the cache, verified.

A file counts as present only when its SHA-256 matches the registry, so a
half-written or tampered file is fetched again instead of being parsed.  A
download is written to a temporary name next to its target and renamed only
after the whole file arrived and its checksum matched (``atomic_path``), so
an interrupted or corrupt download never leaves a file that looks complete.
Mirrors are tried in order; ``urllib`` is used so ``file://`` URLs work too.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from ..atomic import atomic_path
from ..errors import DataError
from . import registry

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT = 60.0


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def mismatch(where: str, expected: str, got: str) -> DataError:
    """The one-line error for a checksum mismatch (first 12 hex chars of each)."""
    return DataError(f"{where}: checksum mismatch (expected sha256 {expected[:12]}..., got {got[:12]}...)")


def verify(path: str | Path, expected: str) -> None:
    """Raise :class:`DataError` unless ``path`` has SHA-256 ``expected``."""
    got = sha256_file(path)
    if got != expected:
        raise mismatch(str(path), expected, got)


def is_cached(name: str) -> bool:
    """True if every file of data set ``name`` is in the cache (not re-hashed:
    this is the cheap check used for listings)."""
    folder = registry.dataset_dir(name)
    return all((folder / f).is_file() for f in registry.CHECKSUMS[name])


def fetch_url(url: str, target: Path, expected: str) -> None:
    """Download ``url`` to ``target`` via a temporary file, verifying SHA-256
    while streaming; on any failure nothing is left behind."""
    request = urllib.request.Request(url, headers={"User-Agent": "aelab"})
    with atomic_path(target) as tmp:
        h = hashlib.sha256()
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != expected:
            raise mismatch(url, expected, h.hexdigest())


def fetch_file(name: str, filename: str, expected: str, target: Path) -> None:
    """Try each mirror of data set ``name`` for ``filename`` until one yields
    the right bytes; one DataError listing every failure otherwise."""
    failures = []
    for base in registry.MIRRORS[name]:
        url = base.rstrip("/") + "/" + filename
        log.info("downloading %s", url)
        try:
            fetch_url(url, target, expected)
            return
        except DataError as e:
            failures.append(str(e))
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            failures.append(f"{url}: {reason}")
    raise DataError(f"could not download {filename} for data set '{name}': " + "; ".join(failures))


def ensure_files(name: str) -> Path:
    """Make sure the cache folder of data set ``name`` holds all its files,
    verified, downloading only those missing or wrong; return the folder."""
    folder = registry.dataset_dir(name)
    for filename, expected in registry.CHECKSUMS[name].items():
        target = folder / filename
        if target.is_file():
            if sha256_file(target) == expected:
                continue
            log.warning("%s: checksum mismatch, downloading it again", target)
        fetch_file(name, filename, expected, target)
    return folder
