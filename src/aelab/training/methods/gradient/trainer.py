"""``method: gradient``: minibatch gradient descent on the family's objective
(:class:`aelab.training.gradient.GradientTrainer`)."""
from __future__ import annotations

from ...callbacks import CheckpointCallback
from ...checkpoint import restore_checkpoint
from ...gradient import GradientTrainer
from ...objectives import make_objective
from ...registry import Trainer


class Gradient(Trainer):
    method = "gradient"
    description = "minibatch gradient descent with a torch optimizer (sgd, adam, rmsprop, ...)"
    fuses = True  # aelab.training.fused runs GradientTrainer's epochs for K models at once

    def make(self, model, cfg, callbacks):
        return GradientTrainer(model, make_objective(cfg.model, cfg.train), cfg.train, callbacks)

    def restore(self, runner, path):
        restore_checkpoint(path, runner)

    def checkpoint_callback(self, spec, path):
        return CheckpointCallback(path, every=spec.checkpoint_every, seconds=spec.checkpoint_seconds)

    def copies(self, spec):
        return 5  # weights, gradients, two optimizer moments, the best weights kept for restore_best


TRAINER = Gradient()
