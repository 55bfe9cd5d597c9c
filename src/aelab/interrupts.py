"""SIGINT and SIGTERM as one clean line, at any moment.

:func:`install` (called first thing by the console script) turns both
signals into :class:`Interrupted`, a ``KeyboardInterrupt`` that remembers
its signal, so every ``finally`` and lock release runs as for Ctrl-C.  Long
commands say how to continue with :func:`hint` (``aelab train --resume
runs/x``); :func:`report` prints the one line once and returns the exit
code the shell expects, 128 + the signal number (130 for SIGINT, 143 for
SIGTERM).  This module imports only what the interpreter has already loaded,
so the handlers are in place a few milliseconds after Python starts, before
the command line's own imports begin.
"""
from __future__ import annotations

import contextlib
import signal
import sys

_state = {"signal": None, "hints": [], "hint": None, "reported": False}


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, frame) -> None:
    _state["signal"] = signum
    raise Interrupted(signum)


def install() -> None:
    """Raise :class:`Interrupted` on SIGINT and SIGTERM (main thread only)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise)


def received() -> int | None:
    """The signal that interrupted this process, if any."""
    return _state["signal"]


@contextlib.contextmanager
def hint(text: str, when=None):
    """While inside, an interruption's line ends with ``text`` (e.g. the
    command that resumes the work), provided ``when()`` (checked at the
    moment of the interruption) holds: a run interrupted before it wrote
    anything resumable says only "interrupted"."""
    entry = (text, when or (lambda: True))
    _state["hints"].append(entry)
    try:
        yield
    except KeyboardInterrupt:
        if entry[1]():
            _state["hint"] = text  # the outermost hint wins: the command the user typed
        raise
    finally:
        _state["hints"].remove(entry)


def command(*words) -> str:
    """A shell command line with each word quoted as needed."""
    import shlex
    return " ".join(shlex.quote(str(w)) for w in words)


def report(exc: BaseException | None = None) -> int:
    """Print the interruption's one line (once per process) and return its exit code."""
    signum = getattr(exc, "signum", None) or _state["signal"] or signal.SIGINT
    if not _state["reported"]:
        _state["reported"] = True
        text = f"interrupted ({signal.Signals(signum).name})"
        pending = [text for text, when in _state["hints"] if when()]
        last = _state["hint"] or (pending[0] if pending else None)
        if last:
            text += f": {last}"
        print(text, file=sys.stderr, flush=True)
    return 128 + int(signum)
