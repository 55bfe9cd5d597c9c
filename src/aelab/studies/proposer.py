"""How a study turns a trial into a config, and what it adds to the
study's outputs: the hooks a study strategy plugs into the runner with.

The default proposer takes the point of the space the strategy's sampler
suggested (or that was queued).  Architecture studies plug in
:class:`aelab.studies.architecture.proposer.ArchitectureProposer`, which
proposes an architecture from the study's history and writes its own
evolution outputs; the runner, results and figures only ask the proposer.
"""
from __future__ import annotations

from pathlib import Path

from .space import config_for, label_of


class Proposer:
    """Points of the space."""

    label_column: str | None = None  # a results column before the space's fields ("architecture")
    many: bool = False  # hundreds of configurations: figures show the best, not one bar each
    reads_history: bool = False  # proposes from the study's earlier trials (so one at a time)

    def config(self, study, trial, ctx, values: dict):
        """The validated config of ``trial`` from the suggested ``values``."""
        trial.set_user_attr("config", label_of(values, ctx.params))
        return config_for(ctx.base, ctx.params, values)

    def outputs(self, ctx, study) -> list[Path]:
        """Files of its own, written with the study's results (paths returned)."""
        return []
