"""``aelab`` / ``python -m aelab``: signals first, then the command line.

SIGINT and SIGTERM become one line and exit code 130 / 143 from the very
start (:mod:`aelab.interrupts`), before the imports of the command line
itself begin, so even an early Ctrl-C prints no traceback.  When the command
is done, the process ends without the interpreter's teardown where that is
safe (:func:`_leave`): unloading torch costs up to a second and writes
nothing, since every file aelab writes is complete and closed by then.
"""
from __future__ import annotations

import sys

# modules whose exit handlers do real work (flush a tracking server, stop a cluster)
_NEEDS_TEARDOWN = ("ray", "mlflow", "tensorboard", "torch.utils.tensorboard", "multiprocessing.managers")


def main() -> None:
    from . import interrupts, threads
    interrupts.install()
    threads.configure()  # before torch loads: OpenMP threads spin only briefly
    try:
        from .cli import app
        app(prog_name="aelab")
    except KeyboardInterrupt as e:  # during the imports, before a command caught it
        sys.exit(interrupts.report(e))
    except SystemExit as e:
        if interrupts.received() is not None:  # typer turns an interrupt while parsing into a silent exit
            sys.exit(interrupts.report())
        _leave(e.code)
        raise
    except Exception:
        if interrupts.received() is not None:  # an import swallowed the interrupt and failed later
            sys.exit(interrupts.report())
        raise


def _leave(code) -> None:
    """End the process at once with ``code`` when torch is loaded (its
    teardown is the slow part) and nothing loaded needs its exit handlers."""
    if not (code is None or isinstance(code, int)) or "torch" not in sys.modules \
            or any(m in sys.modules for m in _NEEDS_TEARDOWN):
        return  # a message to print, nothing slow to skip, or exit handlers that must run
    import logging
    import os
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    main()
