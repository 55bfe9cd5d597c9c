"""How many CPU threads torch uses, and how they wait: one setting for every
entry point.

The setting is ``--threads`` on the command line, ``train.threads`` in a
config or ``$AELAB_THREADS`` (in that order of precedence); ``auto`` (the
default) takes the CPUs this process may use minus those other processes
keep busy (:func:`load`), at least one.  Studies and LSO studies set a
fixed share instead (:func:`share`: the CPUs divided among the workers), so
their results do not depend on the load -- a result's last bits depend on
the thread count.  LSO and the explorer,
whose work is many small operations, default to one thread instead.

Why it matters: torch's OpenMP threads (libgomp, on Linux) spin while they
wait for each other, 300,000 rounds by default.  On a CPU shared with other
jobs a spinning thread holds a core its partner needs: beside two busy
processes, a mnist-vae epoch took 2.0 s with two threads instead of 0.8 s
with one, and up to 25 s on a busier day (docs/benchmarks.md, "Threads on a
busy machine").  :func:`configure` shortens the spin to ``SPIN`` rounds
(``GOMP_SPINCOUNT``, unless the user set it or ``OMP_WAIT_POLICY``) before
torch loads: as fast as the default on an idle machine, close to sleeping at
once (``OMP_WAIT_POLICY=PASSIVE``, which doubles the idle epoch) on a busy
one.  ``auto`` then also avoids the oversubscription itself, and
:func:`busy_warning` says when the machine is busier than its cores.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

ENV = "AELAB_THREADS"
SPIN = 3000  # libgomp spin rounds before a waiting thread sleeps (its default: 300,000)
_share: list[int] = []  # a study worker's share of the cores (innermost last)
_forced: list[int] = []  # --threads on the command line
_measured: list[float] = []  # (monotonic time, busy CPUs) of the last load() sample


def configure() -> None:
    """Shorten OpenMP's spin-wait, if torch is not imported yet (OpenMP reads
    it once, when torch loads) and the user chose no wait policy."""
    if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN))


def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load(window: float = 0.1) -> float:
    """How many CPUs other processes keep busy right now: the busy share of
    all CPUs over ``window`` seconds (``/proc/stat``; a virtual machine's
    stolen time counts as busy), times the CPU count.  Where there is no
    ``/proc/stat``, the 1-minute load average (which lags a minute behind,
    and still counts a process that just ended); 0 where neither exists."""
    if _measured and time.monotonic() - _measured[0] < 1.0:
        return _measured[1]  # one sample serves the auto choice and the busy warning
    first = _cpu_times()
    if first is not None:
        time.sleep(window)
        second = _cpu_times()
        busy, total = (b - a for a, b in zip(first, second))
        _measured[:] = [time.monotonic(), cpus() * busy / total if total > 0 else 0.0]
        return _measured[1]
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def auto() -> int:
    """The CPUs not kept busy by other processes, at least one."""
    return max(1, min(cpus(), round(cpus() - load())))


def parse(value, where: str) -> int | None:
    """``value`` as a thread count (``None`` for auto); one line if it is neither."""
    from .errors import ConfigError
    if value is None or value == "auto":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(value).strip() != str(n):
        raise ConfigError(f"{where}: expected a number of threads (1, 2, ...) or 'auto', got {value!r}")
    return n


def force(value: str) -> None:
    """``--threads``: above every config (and inherited by worker processes
    through the environment)."""
    n = parse(value, "--threads")
    _forced[:] = [n] if n is not None else []
    os.environ[ENV] = str(value)


def resolve(setting=None, fallback: int | None = None) -> int:
    """The thread count: ``--threads`` > ``setting`` (a config's, an int or
    ``auto``) > ``$AELAB_THREADS`` > a study worker's share > ``fallback``
    (an entry point's own default) > auto."""
    if _forced:
        return _forced[0]
    n = parse(setting, "train.threads")
    if n is None:
        n = parse(os.environ.get(ENV), f"${ENV}")
    if n is None and _share:
        n = _share[-1]
    for choice in (n, fallback):
        if choice is not None:
            return choice
    return auto()


@contextlib.contextmanager
def share(n: int):
    """Inside, ``auto`` means ``n`` threads: a study worker's part of the cores."""
    _share.append(n)
    try:
        yield
    finally:
        _share.pop()


@contextlib.contextmanager
def using(n: int):
    """Run the block with ``n`` torch threads, then restore the caller's count."""
    import torch
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def busy_warning(n: int) -> str | None:
    """One line when the machine is oversubscribed -- other processes' load
    plus our ``n`` threads exceed its cores by a whole core -- else ``None``."""
    others, total = load(), cpus()
    if others + n <= total + 1:
        return None
    return (f"threads: the machine is busy (other processes use {others:.1f} of {total} CPUs); training with "
            f"{n} torch thread{'s' if n > 1 else ''} (set train.threads, --threads or ${ENV} to choose)")
