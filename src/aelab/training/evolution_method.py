"""What the gradient-free methods (GA, ES) share as :class:`Trainer` plug-ins:
:class:`~aelab.training.evolution.EvolutionTrainer` over a batched
population, budgets in generations and seconds, a checkpoint of the
population or strategy state."""
from __future__ import annotations

from ..errors import ConfigError
from ..models.family import family
from .callbacks import EvolutionCheckpointCallback
from .checkpoint import read_tensors_and_state
from .evolution import EvolutionTrainer
from .registry import Trainer


class EvolutionMethod(Trainer):
    unit = "generation"

    def check(self, cfg):
        fam = family(cfg.model.kind)
        if not fam.evolvable:
            raise ConfigError(f"train.method: {self.method} evolves plain autoencoders' weights (model.kind: "
                              f"ae), not kind {cfg.model.kind}")

    def make(self, model, cfg, callbacks):
        return EvolutionTrainer(model, cfg.train, callbacks)

    def restore(self, runner, path):
        runner.restore(*read_tensors_and_state(path))

    def checkpoint_callback(self, spec, path):
        return EvolutionCheckpointCallback(path, every=spec.checkpoint_every, seconds=spec.checkpoint_seconds)

    def budget(self, spec):
        return spec.generations

    def time_budget(self, spec):
        return spec.max_seconds

    def copies(self, spec):
        return 2 * spec.population + 2  # the population, its next generation, the best and the model

    def loss_name(self, spec) -> str:
        return spec.fitness

    def summary(self, spec, done):
        limit = f" (at most {spec.max_seconds:g} s)" if spec.max_seconds is not None else ""
        return f"{self.how(spec)}, {self.progress(spec, done)}{limit}, fitness {spec.fitness}, seed {spec.seed}"

    def how(self, spec) -> str:
        raise NotImplementedError
