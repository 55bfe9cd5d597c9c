"""``method: ga``: the GA paper's genetic algorithm (aelab.training.strategies.ga)."""
from __future__ import annotations

from ...evolution_method import EvolutionMethod


class GeneticAlgorithm(EvolutionMethod):
    method = "ga"
    description = "genetic algorithm over the weights, population scored in one batched pass (the GA paper)"


TRAINER = GeneticAlgorithm()
