"""``aelab`` / ``python -m aelab``: signals first, then the command line.

SIGINT and SIGTERM become one line and exit code 130 / 143 from the very
start (:mod:`aelab.interrupts`), before the imports of the command line
itself begin, so even an early Ctrl-C prints no traceback.
"""
from __future__ import annotations

import sys


def main() -> None:
    from . import interrupts
    interrupts.install()
    try:
        from .cli import app
        app(prog_name="aelab")
    except KeyboardInterrupt as e:  # during the imports, before a command caught it
        sys.exit(interrupts.report(e))
    except SystemExit:
        if interrupts.received() is not None:  # typer turns an interrupt while parsing into a silent exit
            sys.exit(interrupts.report())
        raise
    except Exception:
        if interrupts.received() is not None:  # an import swallowed the interrupt and failed later
            sys.exit(interrupts.report())
        raise


if __name__ == "__main__":
    main()
