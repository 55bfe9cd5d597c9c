"""What the gradient-free methods (GA, ES) share as :class:`Trainer` plug-ins:
:class:`~aelab.training.evolution.EvolutionTrainer` over a batched
population, budgets in generations and seconds, a checkpoint of the
population or strategy state."""
from __future__ import annotations

from .evolution import EvolutionTrainer
from .state_trainer import StateTrainer


class EvolutionMethod(StateTrainer):
    def make(self, model, cfg, callbacks):
        return EvolutionTrainer(model, cfg.train, callbacks)

    def copies(self, spec):
        return 2 * spec.population + 2  # the population, its next generation, the best and the model

    def figures(self, folder, model, data, history, device, stages=None):
        """The fitness per generation and, on a fresh run, the stages strip."""
        from ..plots import save_fitness_curve
        paths = [save_fitness_curve(history, folder / "fitness.png", title="Fitness per generation")]
        return paths + ([stages_strip(folder, model, data, stages, device)] if stages else [])


def stages_strip(folder, model, data, stages: list, device):
    """The GA paper's "stages of evolution": the best individual's outputs
    on (up to 10) training images at evenly spaced generations."""
    import numpy as np
    import torch

    from ..plots import save_reconstruction_rows
    from .population import Population
    idx = np.unique(data.y_train, return_index=True)[1][:10] if data.y_train is not None else np.arange(10)
    pick = data.x_train[np.sort(idx)[:10]]
    x = torch.as_tensor(pick, device=device)
    outs = Population(model).reconstruct(torch.stack([v for _, v in stages]), x).cpu().numpy()
    rows = [("target", pick)] + [(f"gen {g}", o) for (g, _), o in zip(stages, outs)]
    return save_reconstruction_rows(rows, folder / "stages.png", title="Stages of evolution (best individual)")
