"""Architecture evolution as a study strategy: the proposer hook that makes
each trial's config from the study's history (the article's rule, aging
evolution, or a sampler over the architecture space), and the hook that
writes its own outputs (evolution.md, lineage and Pareto figures)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..proposer import Proposer
from ..space import config_for, label_of
from .space import ArchitectureSpec, Space


@dataclass
class ArchitectureProposer(Proposer):
    """Proposes architectures of ``spec`` for images of ``input_shape`` (C, H, W)."""

    spec: ArchitectureSpec
    input_shape: tuple[int, int, int]
    label_column = "architecture"
    many = True
    reads_history = True  # every strategy's proposal is drawn or mutated from the trials so far

    def config(self, study, trial, ctx, values):
        from .propose import propose
        space = Space.resolve(self.spec, config_for(ctx.base, ctx.params, values).model_dump(mode="json"),
                              self.input_shape)
        arch = propose(study, trial, ctx, space).arch
        trial.set_user_attr("config", ", ".join(filter(None, [arch.label(), label_of(values, ctx.params)])))
        return space.config(arch)

    def outputs(self, ctx, study) -> list[Path]:
        from .outputs import architecture_outputs
        return architecture_outputs(ctx, study)
