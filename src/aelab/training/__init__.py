"""Trainers: minibatch gradient descent (evolutionary trainers come later)."""
from .gradient import Callback, GradientTrainer, TrainState
from .objectives import make_objective

__all__ = ["Callback", "GradientTrainer", "TrainState", "make_objective"]
