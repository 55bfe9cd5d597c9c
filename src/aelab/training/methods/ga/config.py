"""``method: ga``: its spec (light: no torch)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....train_spec import EvolutionTrain


class GATrain(EvolutionTrain):
    """A genetic algorithm (``method: ga``).  The defaults are the GA
    paper's: copy the best individual into every slot and perturb ``k =
    mutated_weights`` random weights of each copy by uniform(-1, 1)."""

    method: Literal["ga"] = "ga"
    mutated_weights: int = Field(default=10, ge=1, description="k: genes perturbed per child (uniform)")
    elitism: int = Field(default=1, ge=0)
    selection: Literal["best", "tournament", "rank"] = "best"
    tournament_size: int = Field(default=3, ge=2)
    crossover: Literal["none", "uniform", "one_point"] = "none"
    mutation: Literal["uniform", "gaussian"] = "uniform"
    mutation_rate: float = Field(default=0.01, gt=0.0, le=1.0)
    adaptive: bool = Field(default=False, description="adapt sigma by the 1/5th success rule")

    @property
    def strategy(self) -> str:
        return "ga"

    def how(self) -> str:
        mutation = f"{self.mutated_weights} weights" if self.mutation == "uniform" else \
            f"rate {self.mutation_rate:g}, sigma {self.sigma:g}"
        return (f"GA, population {self.population}, {self.mutation} mutation of {mutation}, selection "
                f"{self.selection}, elitism {self.elitism}")


SPEC = GATrain
