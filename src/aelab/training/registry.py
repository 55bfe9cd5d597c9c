"""Trainers as plug-ins: one registry, keyed by ``train.method``.

A training method is a folder ``aelab/training/methods/<name>/`` with two
files: ``config.py`` (``SPEC``: its pydantic spec, ``method:
Literal["<name>"]`` plus only its own fields on top of
:class:`aelab.train_spec.TrainBase`) and ``trainer.py`` (``TRAINER``: a
:class:`Trainer`).  Other packages add methods through the entry-point group
``aelab.trainers`` (a module defining both).

The pipeline, the progress bar, ``aelab show`` and the reports ask the
method's :class:`Trainer`, never its name: how to run it, how much work its
budget is and in what unit, how many copies of the parameters it holds, and
how to say in one line what it trained.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..plugins import Registry

REGISTRY = Registry(f"{__package__}.methods", Path(__file__).parent / "methods", "method", "aelab.trainers",
                    "trainer", "TRAINER")


class Trainer:
    """What a training method declares.  ``make`` returns the object that
    trains (``fit(x, y, x_val, y_val) -> TrainState``, ``state``, ``spec``,
    ``model``, ``device``, ``checkpoint()``); the rest describe it."""

    method: str = ""
    description: str = ""
    unit: str = "epoch"      # one row of its history: "epoch", "generation"

    def check(self, cfg) -> None:
        """Refuse, in one line, a model this method cannot train."""

    def make(self, model, cfg, callbacks: list) -> Any:
        raise NotImplementedError

    def restore(self, runner, path: Path) -> None:
        """Load the checkpoint at ``path`` into ``runner`` (bit-exact resume)."""
        raise NotImplementedError

    def checkpoint_callback(self, spec, path: Path):
        """The one checkpoint policy (every ``checkpoint_every`` units or
        ``checkpoint_seconds`` seconds), writing this method's checkpoint."""
        raise NotImplementedError

    def budget(self, spec) -> int:
        """Units (epochs, generations) the run asks for."""
        raise NotImplementedError

    def time_budget(self, spec) -> float | None:
        """Seconds the run may take at most (None: no limit)."""
        return None

    def copies(self, spec) -> int:
        """float32 copies of the parameters training holds at once (memory check)."""
        raise NotImplementedError

    def summary(self, spec, done: int | None) -> str:
        """One line: what it trained and how far it got (``done`` units)."""
        raise NotImplementedError

    def loss_name(self, spec) -> str:
        """What its progress bar calls the number it drives down."""
        return "loss"

    def progress(self, spec, done: int | None) -> str:
        total = self.budget(spec)
        return f"{done}/{total} {self.unit}s" if done is not None else f"{total} {self.unit}s"


def methods() -> list[str]:
    """Every registered ``train.method``, sorted."""
    return REGISTRY.keys()


def spec_classes() -> dict[str, type]:
    """method -> its spec class (light: no torch)."""
    return REGISTRY.specs()


@functools.cache
def trainer(method: str) -> Trainer:
    """The trainer registered as ``method`` (imports its implementation)."""
    from ..errors import ConfigError
    if method not in REGISTRY.modules:
        raise ConfigError(f"train.method: {method!r} is not a training method (known: {', '.join(methods())})")
    return REGISTRY.implementation(method)
