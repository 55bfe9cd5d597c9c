"""``method: es``: an evolution strategy (OpenAI-ES, SNES, PGPE, sep-CMA-ES;
aelab.training.strategies)."""
from __future__ import annotations

from ...evolution_method import EvolutionMethod

NAMES = {"openai": "OpenAI-ES", "snes": "SNES", "pgpe": "PGPE", "sepcma": "sep-CMA-ES"}
STEP = {"openai": "Adam step", "snes": "mean rate", "pgpe": "ClipUp step", "sepcma": None}


class EvolutionStrategy(EvolutionMethod):
    method = "es"
    description = "evolution strategy over the weights: OpenAI-ES, SNES, PGPE or sep-CMA-ES (train.es)"

    def how(self, spec):
        step = f", {STEP[spec.es]} {spec.lr:g}" if STEP[spec.es] else ""
        return f"{NAMES[spec.es]}, population {spec.population}, sigma {spec.sigma:g}{step}"


TRAINER = EvolutionStrategy()
