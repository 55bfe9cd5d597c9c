"""``method: ga``: the GA paper's genetic algorithm (aelab.training.strategies.ga)."""
from __future__ import annotations

from ...evolution_method import EvolutionMethod


class GeneticAlgorithm(EvolutionMethod):
    method = "ga"
    description = "genetic algorithm over the weights, population scored in one batched pass (the GA paper)"

    def how(self, spec):
        mutation = f"{spec.mutated_weights} weights" if spec.mutation == "uniform" else \
            f"rate {spec.mutation_rate:g}, sigma {spec.sigma:g}"
        return (f"GA, population {spec.population}, {spec.mutation} mutation of {mutation}, selection "
                f"{spec.selection}, elitism {spec.elitism}")


TRAINER = GeneticAlgorithm()
