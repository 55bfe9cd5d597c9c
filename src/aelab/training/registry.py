"""Trainers as plug-ins: one registry, keyed by ``train.method``.

A training method is a folder ``aelab/training/methods/<name>/`` with two
files: ``config.py`` (``SPEC``: its pydantic spec, ``method:
Literal["<name>"]`` plus only its own fields on top of
:class:`aelab.train_spec.TrainBase`) and ``trainer.py`` (``TRAINER``: a
:class:`Trainer`).  Other packages add methods through the entry-point group
``aelab.trainers`` (a module defining both).

The pipeline asks the method's :class:`Trainer`, never its name, how to
run and resume it and how many copies of the parameters it holds; the
progress bar, ``aelab show`` and the reports ask the method's spec (light)
for its budget, unit and one-line summary (:class:`aelab.train_spec.TrainBase`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plugins import Registry

REGISTRY = Registry(f"{__package__}.methods", Path(__file__).parent / "methods", "method", "aelab.trainers",
                    "trainer", "TRAINER", what="train.method")


class Trainer:
    """What a training method declares.  ``make`` returns the object that
    trains (``fit(x, y, x_val, y_val) -> TrainState``, ``state``, ``spec``,
    ``model``, ``device``)."""

    method: str = ""
    description: str = ""
    # Its runs can be trained stacked by aelab.training.fused (which reproduces
    # this trainer's epochs member by member); only the gradient trainer can.
    fuses: bool = False

    def check(self, cfg) -> None:
        """Refuse, in one line, a model this method cannot train (the
        family lists the methods that train it)."""
        from ..errors import ConfigError
        from ..models.family import family
        able = family(cfg.model.kind).methods
        if self.method not in able:
            raise ConfigError(f"train.method: {self.method} cannot train kind {cfg.model.kind} "
                              f"(it trains with: {', '.join(able)})")

    def make(self, model, cfg, callbacks: list) -> Any:
        raise NotImplementedError

    def restore(self, runner, path: Path) -> None:
        """Load the checkpoint at ``path`` into ``runner`` (bit-exact resume)."""
        raise NotImplementedError

    def checkpoint_callback(self, spec, path: Path):
        """The one checkpoint policy (every ``checkpoint_every`` units or
        ``checkpoint_seconds`` seconds), writing this method's checkpoint."""
        raise NotImplementedError

    def figures(self, folder: Path, model, data, history: list[dict], device, stages=None) -> list[Path]:
        """Its own figures (default: the loss per epoch); ``stages`` is what
        its state kept along the way, when the run is fresh."""
        from ..plots import save_loss_curves
        return [save_loss_curves(history, folder / "loss_curves.png", title="Loss per epoch")]

    def copies(self, spec) -> int:
        """float32 copies of the parameters training holds at once (memory check)."""
        raise NotImplementedError


def methods() -> list[str]:
    """Every registered ``train.method``, sorted."""
    return REGISTRY.keys()


def spec_classes() -> dict[str, type]:
    """method -> its spec class (light: no torch)."""
    return REGISTRY.specs()


def trainer(method: str) -> Trainer:
    """The trainer registered as ``method`` (imports its implementation)."""
    return REGISTRY.implementation(method)
