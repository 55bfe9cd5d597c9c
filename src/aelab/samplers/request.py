"""What ``aelab sample`` checks before it does any work: each mistake is one
line naming the option or the run and what was expected, and nothing has
been written yet.

The model is asked for capabilities, never for its kind: a sampler names
the ones it needs (``decode`` always; ``generative`` for the prior,
``embed`` for a sampler fitted to the training codes) and a refusal names
the samplers the run can use instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pydantic import ValidationError

from ..models.family import CONDITIONAL, DECODE, EMBED, GENERATIVE, Family, families, family
from ..outdir import check_dir
from ..runs import Run, load_run
from . import SamplerError, SamplerSpec, names, sampler, spec_class

SAMPLES, GRID, INFO = "samples.npz", "grid.png", "sampler.json"
DEFAULTS = ("prior", "gaussian")  # without --sampler: the first the model can use
MISSING = {  # what a model lacking a capability a sampler needs does not have
    GENERATIVE: "has no prior to draw from (it is not generative)",
    EMBED: "has no encoder (the {name} sampler is fitted to the training codes)",
}


@dataclass
class Request:
    """A checked sampling request."""

    run: Run
    family: Family
    name: str
    spec: SamplerSpec
    n: int
    seed: int
    classes: list[int] | None  # a conditional model's classes, drawn in turn
    out: Path


def check_request(run_dir, name: str | None, n: int, out, seed: int, options: dict,
                  classes: str | Sequence[int] | None) -> Request:
    """Every check, the light ones (no torch: the numbers, a named sampler
    and its options) first."""
    if n < 1:
        raise SamplerError(f"--n {n}: expected at least 1 sample")
    if name is not None:
        checked_options(name, options)
    run = finished_run(run_dir)
    fam = family(run.config.model.kind)  # the family's module imports torch
    if not fam.has(DECODE):
        kinds = ", ".join(f.kind for f in families() if f.has(DECODE))
        raise SamplerError(f"{run.path}: is a '{fam.kind}' run, which does not decode; sampling needs a model "
                           f"that decodes a latent code (model.kind: {kinds})")
    name = name or default_sampler(fam)
    spec = checked_options(name, options)
    check_capabilities(name, fam, run)
    wanted = checked_classes(classes, fam, run)
    where = Path(out) if out is not None else run.path / f"samples-{name}"
    return Request(run, fam, name, spec, int(n), int(seed), wanted, check_new_output(where))


def finished_run(run_dir) -> Run:
    """A run directory with a trained, sound model."""
    run = load_run(run_dir)
    if not run.has_model:
        raise SamplerError(f"{run.path}: has no trained model yet (model.json missing); "
                           f"finish it with aelab train --resume {run.path}")
    if run.status == "diverged":
        raise SamplerError(f"{run.path}: the run diverged; its decoder has nothing meaningful to sample")
    return run


def checked_options(name: str, options: dict) -> SamplerSpec:
    """Sampler ``name``'s spec with ``options``; an option it does not take,
    or a value out of range, is one line."""
    cls = spec_class(name)
    own = [f for f in cls.model_fields if f != "sampler"]
    for key in options:
        if key not in own:
            takes = f"its options: {', '.join(own)}" if own else "it takes none"
            raise SamplerError(f"--{key}: --sampler {name} has no such option ({takes})")
    try:
        return cls.model_validate({"sampler": name, **options})
    except ValidationError as e:
        first = e.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "sampler"
        raise SamplerError(f"--{key} {options.get(key)}: {_expected(first)}") from None


BOUNDS = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
          "greater_than": ("gt", "more than"), "less_than": ("lt", "less than")}


def _expected(error: dict) -> str:
    """A pydantic error as "expected ...": a bound in words, else its own message."""
    if error["type"] in BOUNDS:
        key, words = BOUNDS[error["type"]]
        return f"expected {words} {error['ctx'][key]}"
    msg = error["msg"].removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def default_sampler(fam: Family) -> str:
    """Without ``--sampler``: the family's own ``default_sampler`` where it
    names one it can use (the RAE's ex-post density), else the first of
    :data:`DEFAULTS` it can use."""
    own = getattr(fam, "default_sampler", None)
    if own in names() and usable(own, fam):
        return own
    return next((s for s in DEFAULTS if s in names() and usable(s, fam)), DEFAULTS[-1])


def usable(name: str, fam: Family) -> bool:
    return sampler(name).needs <= fam.capabilities


def check_capabilities(name: str, fam: Family, run: Run) -> None:
    """The model has what sampler ``name`` needs; else one line naming what
    it lacks and the samplers it can use."""
    missing = sorted(sampler(name).needs - fam.capabilities)
    if not missing:
        return
    lacks = MISSING.get(missing[0], f"does not declare '{missing[0]}'").format(name=name)
    others = [s for s in names() if usable(s, fam)]
    own = getattr(fam, "default_sampler", None)
    others.sort(key=lambda s: s != own)  # the family's own first (stable: the rest stay sorted)
    instead = f"use --sampler {' or '.join(others)}" if others else "no registered sampler fits it"
    raise SamplerError(f"--sampler {name}: {run.path} is a '{fam.kind}' run, which {lacks}; {instead}")


def checked_classes(classes, fam: Family, run: Run) -> list[int] | None:
    """The classes a conditional model draws in turn (default: every class);
    ``--classes`` for any other model is one line."""
    if not fam.has(CONDITIONAL):
        if classes is not None:
            raise SamplerError(f"--classes: {run.path} is a '{fam.kind}' run, which is not conditional; "
                               f"drop --classes")
        return None
    k = int(run.model_info["num_classes"])
    if classes is None:
        return list(range(k))
    text = classes if isinstance(classes, str) else ",".join(map(str, classes))
    try:
        wanted = [int(c) for c in text.split(",")]
    except ValueError:
        wanted = []
    if not wanted or any(not 0 <= c < k for c in wanted):
        raise SamplerError(f"--classes {text}: expected class indices from 0 to {k - 1}, e.g. 3 or 0,5")
    return wanted


def check_new_output(out: Path) -> Path:
    """``out`` is a writable place that holds no samples yet."""
    check_dir(out)
    if any((out / f).exists() for f in (SAMPLES, GRID, INFO)):
        raise SamplerError(f"--out {out}: already holds samples ({INFO}); choose another --out")
    return out
