"""The :class:`Trainer` of a runner that saves and restores its own state
(``checkpoint() -> (tensors, meta)``, ``restore(tensors, meta)``): the
GA/ES trainers and the adversarial one share how that state reaches the
checkpoint file and comes back."""
from __future__ import annotations

from .callbacks import StateCheckpointCallback
from .checkpoint import read_tensors_and_state
from .registry import Trainer


class StateTrainer(Trainer):
    def restore(self, runner, path):
        runner.restore(*read_tensors_and_state(path))

    def checkpoint_callback(self, spec, path):
        return StateCheckpointCallback(path, every=spec.checkpoint_every, seconds=spec.checkpoint_seconds)
