"""``aelab sample`` as one function: check, fit the sampler, draw codes,
decode them, write ``RUN/samples-<sampler>/`` (or ``out``).

The checks (:mod:`.request`) import no torch, so a mistake in the numbers
or the sampler's options answers at once; the work is :mod:`.draw`.
Everything is drawn and decoded in memory first, and the files are written
afterwards inside the output's writer lock (:mod:`.outputs`), so a failure
or an interruption leaves nothing behind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import interrupts
from ..outdir import writing
from .request import check_new_output, check_request


def sample_run(run_dir: str | Path, sampler: str | None = None, n: int = 64, out: str | Path | None = None,
               seed: int = 0, components: int | None = None, classes: str | Sequence[int] | None = None,
               options: dict | None = None) -> dict:
    """Draw ``n`` samples of the run's decoder from the sampler named
    ``sampler`` (default: ``prior`` for a generative model, else
    ``gaussian``) and write them to ``out``.  ``components``: the ``gmm``
    sampler's; ``options``: any sampler's options by name; ``classes``: a
    conditional model's classes, drawn in turn (default every class).
    Returns what ``sampler.json`` says, with the folder under ``path``."""
    opts = dict(options or {}) | ({} if components is None else {"components": components})
    req = check_request(run_dir, sampler, n, out, seed, opts, classes)
    from .draw import draw
    from .outputs import write_all
    codes, images, labels, info = draw(req)
    with writing(req.out, keep_on_interrupt=lambda: False), \
            interrupts.hint(f"nothing was kept in {req.out}; run the command again"):
        check_new_output(req.out)  # another command may have written there meanwhile
        write_all(req.out, images, codes, labels, info)
    return info | {"path": str(req.out)}
