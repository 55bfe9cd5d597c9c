"""``method: es``: its spec (light: no torch)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....train_spec import EvolutionTrain

NAMES = {"openai": "OpenAI-ES", "snes": "SNES", "pgpe": "PGPE", "sepcma": "sep-CMA-ES"}
STEP = {"openai": "Adam step", "snes": "mean rate", "pgpe": "ClipUp step", "sepcma": None}

class ESTrain(EvolutionTrain):
    """An evolution strategy (``method: es``); ``es`` names it and ``lr`` is
    its own step size (aelab.training.strategies)."""

    method: Literal["es"] = "es"
    es: Literal["openai", "snes", "pgpe", "sepcma"] = "openai"
    lr: float = Field(default=1e-3, gt=0.0, description=(
        "the strategy's step size: OpenAI-ES's Adam step, SNES's mean learning rate, PGPE's ClipUp "
        "step size (half its maximum speed); sep-CMA-ES takes Hansen's constants and ignores it"))

    @property
    def strategy(self) -> str:
        return self.es

    def how(self) -> str:
        step = f", {STEP[self.es]} {self.lr:g}" if STEP[self.es] else ""
        return f"{NAMES[self.es]}, population {self.population}, sigma {self.sigma:g}{step}"


SPEC = ESTrain
