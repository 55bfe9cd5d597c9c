"""Trainers: minibatch gradient descent, and gradient-free evolution (GA / ES)
over a batched population of networks."""
from .evolution import GA, EvolutionTrainer
from .gradient import Callback, GradientTrainer, TrainState
from .mutants import Mutants
from .objectives import make_objective
from .population import Population

__all__ = ["Callback", "GradientTrainer", "TrainState", "make_objective",
           "EvolutionTrainer", "GA", "Population", "Mutants"]
