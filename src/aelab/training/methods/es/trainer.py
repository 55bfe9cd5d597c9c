"""``method: es``: an evolution strategy (OpenAI-ES, SNES, PGPE, sep-CMA-ES;
aelab.training.strategies)."""
from __future__ import annotations

from ...evolution_method import EvolutionMethod



class EvolutionStrategy(EvolutionMethod):
    method = "es"
    description = "evolution strategy over the weights: OpenAI-ES, SNES, PGPE or sep-CMA-ES (train.es)"


TRAINER = EvolutionStrategy()
