"""``method: es``: its spec (light: no torch)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ....train_spec import EvolutionTrain


class ESTrain(EvolutionTrain):
    """An evolution strategy (``method: es``); ``es`` names it and ``lr`` is
    its own step size (aelab.training.strategies)."""

    method: Literal["es"] = "es"
    es: Literal["openai", "snes", "pgpe", "sepcma"] = "openai"
    lr: float = Field(default=1e-3, gt=0.0, description=(
        "the strategy's step size: OpenAI-ES's Adam step, SNES's mean learning rate, PGPE's ClipUp "
        "step size (half its maximum speed); sep-CMA-ES takes Hansen's constants and ignores it"))


SPEC = ESTrain
