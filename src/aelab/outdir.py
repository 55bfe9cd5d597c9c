"""Output places: checked before anything is written, held by one writer.

:func:`check_dir` / :func:`check_file` turn every file-system reason an
output path cannot work (a regular file in the way, no permission, a
read-only file system) into one line naming the path, before a command
writes anything.  :func:`exclusive` is the one-writer lock of an output
directory: a second command that wants the same directory refuses at once
instead of interleaving its files with the first one's.  :func:`file_lock`
is the waiting kind, for work that several processes share by design (a
study's cached runs).  Locks are ``flock`` locks, so a killed process never
leaves one behind.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import RunDirError

LOCK = ".aelab.lock"


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(folder: Path, label: str) -> None:
    """Fail with one line unless a file can be created in ``folder``."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".aelab-probe-", dir=folder)
    except OSError as e:
        raise RunDirError(f"{label}: cannot write in {folder} ({e.strerror or type(e).__name__})") from None
    os.close(fd)
    os.unlink(tmp)


def check_dir(path: str | Path, label: str = "--out") -> Path:
    """``path`` can be (or already is) a directory this process can write in."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise RunDirError(f"{label} {p}: exists and is not a directory")
    _check_folder(p, f"{label} {p}")
    return p


def _check_folder(p: Path, where: str) -> None:
    base = _existing_ancestor(p)
    if not base.is_dir():
        raise RunDirError(f"{where}: {base} is a file, not a directory")
    _probe(base, where)


def check_file(path: str | Path, label: str = "--out") -> Path:
    """``path`` can be written as a file (its folder is creatable and writable)."""
    p = Path(path)
    if p.is_dir():
        raise RunDirError(f"{label} {p}: is a directory; expected a file name")
    _check_folder(p.parent, f"{label} {p}")
    return p


def make_dir(path: Path, label: str = "--out") -> None:
    """``mkdir -p`` with a one-line error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"{label} {path}: cannot create it ({e.strerror or type(e).__name__})") from None


@contextlib.contextmanager
def exclusive(path: str | Path, label: str | None = "--out") -> Iterator[Path]:
    """Hold ``path``'s writer lock (creating the directory); refuse in one
    line when another aelab command holds it (``label``: the option that
    would choose another place).  The lock file is removed on release, so a
    finished output holds only what the command wrote."""
    p = Path(path)
    make_dir(p, label or "directory")
    f = _acquire(p / LOCK)
    if f is None:
        other = f" or choose another {label}" if label else ""
        raise RunDirError(f"{p}: another aelab command ({_holder(p / LOCK)}) is writing there; "
                          f"wait for it to finish{other}")
    try:
        f.write(f"pid {os.getpid()}")
        f.flush()
        yield p
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p / LOCK)  # while still holding it: a newcomer then makes a fresh file
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def _acquire(lock: Path):
    """The open, locked lock file, or ``None`` if another process holds it.
    A file unlinked by its previous holder between our open and our lock is
    not the lock any more: then try again with the new one."""
    while True:
        f = open(lock, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return None
        try:
            if os.stat(lock).st_ino == os.fstat(f.fileno()).st_ino:
                f.truncate(0)
                return f
        except FileNotFoundError:
            pass
        f.close()


def _holder(lock: Path) -> str:
    try:
        return lock.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def writing(path: str | Path, label: str | None = "--out", *, keep: Callable[[], bool] = lambda: False,
            keep_on_interrupt: Callable[[], bool] = lambda: True) -> Iterator[Path]:
    """Hold ``path``'s writer lock while the block writes there.  If the
    block fails, whatever it added is removed (the directory too, if it
    made it), unless ``keep()`` says the partial output is worth keeping
    (a run with a checkpoint resumes).  An interruption keeps the output
    for resuming when ``keep_on_interrupt()`` says it can be resumed (a
    directory interrupted before it held anything resumable is undone like
    a failure)."""
    p = Path(path)
    fresh = not p.exists()
    with exclusive(p, label):
        before = {q.name for q in p.iterdir()}
        try:
            yield p
        except Exception:
            _undo(p, before, fresh, keep)
            raise
        except KeyboardInterrupt:
            if not keep_on_interrupt():
                _undo(p, before, fresh, keep)
            raise


def _undo(p: Path, before: set[str], fresh: bool, keep: Callable[[], bool]) -> None:
    if keep():
        return
    if fresh:
        shutil.rmtree(p, ignore_errors=True)
        return
    for q in p.iterdir():
        if q.name not in before and q.name != LOCK:
            shutil.rmtree(q, ignore_errors=True) if q.is_dir() else q.unlink(missing_ok=True)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing), waiting
    for its holder: for work that processes take turns at."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
