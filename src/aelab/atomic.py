"""Atomic file writes: write to a temporary name in the same folder, then rename.

A reader (or a resumed run) therefore sees either the old file or the new
one, never half of one, even if the process is killed with SIGKILL: the
rename is what gives atomicity against the death of the process, because the
data already sits in the kernel's page cache when the name changes.

``fsync`` only matters when the *machine* dies (power loss, kernel crash):
without it, the rename may reach the disk before the data does, and the file
can come back empty or torn.  A durable write (``durable=True``) flushes the
temporary file before the rename, so after a power loss the file is again
the old one or the new one.  It costs a disk flush per write, which on a busy
disk can stall for a long time, so it is paid where a file is the only copy
of something and written rarely (config, metrics, reports; checkpoints,
which the checkpoint policy writes every ``train.checkpoint_seconds``, 10 s
by default) and skipped for files that are rewritten often or can be drawn
again: ``history.csv`` (rewritten after every epoch from the history the
checkpoint carries) and figures (``aelab evaluate`` renders them again).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``durable``: flush the written file to disk before the rename (see the
    module docstring).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if durable:
            _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Atomically write ``data`` to ``path`` (durably unless told otherwise)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())


def write_text(path: str | Path, text: str, durable: bool = True) -> None:
    """Atomically write ``text`` (UTF-8) to ``path`` (durably unless told otherwise)."""
    write_bytes(path, text.encode("utf-8"), durable)
