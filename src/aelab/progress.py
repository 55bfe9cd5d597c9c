"""Progress of long commands on stderr: lines that stay, and one live line.

stdout stays the command's results.  A :class:`Reporter` writes each
finished piece of work as one plain line (flushed, so a log file or a CI
job reads it as it comes) and, only when stderr is a terminal, keeps a
Rich live line below those lines.  Studies (:mod:`aelab.studies.progress`)
and LSO experiment files (:mod:`aelab.lso.progress`) build their lines and
live text with pure functions and hand them to a reporter.  Rich is
imported when a reporter is made, not when this module is.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import Callable

LIVE_REFRESH = 4  # live-line redraws per second (the elapsed clock ticks with them)
BAR_WIDTH, BAR_MIN = 20, 6


def clock(seconds: float) -> str:
    """``H:MM:SS``, as Rich's time columns write it."""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def duration(seconds: float | None) -> str:
    """A short duration for a finished piece of work: ``0.4 s``, ``42 s``, ``0:03:12``."""
    if seconds is None or seconds != seconds:  # unknown or nan
        return "? s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 60 else clock(seconds)


class Reporter:
    """Lines that stay and, on a terminal, a live line under them (stderr).

    ``live`` forces the live line on or off (default: on when the console is
    an interactive terminal).  Use as a context manager around the work, so
    the live line stops (and the cursor comes back) however the work ends.
    """

    def __init__(self, console=None, live: bool | None = None):
        from rich.console import Console
        self.console = console or Console(stderr=True, highlight=False)
        self.live = (self.console.is_terminal and not self.console.is_dumb_terminal) if live is None else live
        self._live = None
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """One plain line (above the live line when there is one)."""
        with self._lock:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
            if self._live is not None:
                self._live.refresh()  # the live line under it says what the line just told

    def start(self, render: Callable[[], object]) -> None:
        """Show ``render()`` as the live line, redrawn a few times a second."""
        if not self.live or self._live is not None:
            return
        from rich.live import Live
        _plain_streams_in_forked_children()
        self._live = Live(console=self.console, get_renderable=render, refresh_per_second=LIVE_REFRESH,
                          transient=False, redirect_stdout=False, redirect_stderr=True)
        self._live.start()

    def stop(self) -> None:
        """Draw the live line a last time and leave it; idempotent."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def live_row(name: str, completed: float, total: float | None, text: str):
    """The live line: ``name  ━━━━━━╺━━━━  text``.  The text has the room it
    needs; the bar takes what is left (up to ``BAR_WIDTH``, none under
    ``BAR_MIN``); on a very narrow terminal the text's end is cut, never wrapped."""
    return _LiveRow(name, completed, total, text)


class _LiveRow:
    def __init__(self, name: str, completed: float, total: float | None, text: str):
        self.name, self.completed, self.total, self.text = name, completed, total, text

    def __rich_console__(self, console, options):
        from rich.progress_bar import ProgressBar
        from rich.table import Column, Table
        from rich.text import Text
        bar = min(BAR_WIDTH, options.max_width - len(self.name) - len(self.text) - 2)
        cells = [Text(self.name, style="bold")]
        columns = [Column(no_wrap=True)]
        if bar >= BAR_MIN:
            cells.append(ProgressBar(total=self.total or None, completed=self.completed, width=bar))
            columns.append(Column(no_wrap=True))
        cells.append(Text(self.text))
        columns.append(Column(no_wrap=True, overflow="ellipsis", ratio=1))
        grid = Table.grid(*columns, padding=(0, 1), expand=True)
        grid.add_row(*cells)
        yield grid


_guarded = False


def _plain_streams_in_forked_children() -> None:
    """A worker forked while the live line is up inherits ``sys.stderr``
    redirected into the parent's live display (and its locks, perhaps held
    by the parent's refresh thread): give children the real streams."""
    global _guarded
    if not _guarded and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_unproxy)
        _guarded = True


def _unproxy() -> None:
    from rich.file_proxy import FileProxy
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, FileProxy):
            setattr(sys, name, stream.rich_proxied_file)
