"""``method: gradient``: its spec (light: no torch)."""
from __future__ import annotations

from typing import Literal, Union

from pydantic import Field, model_validator

from ....train_spec import OPTIMIZERS, ScheduleName, TrainBase


class GradientTrain(TrainBase):
    """Minibatch gradient descent with a torch optimizer (``method: gradient``)."""

    method: Literal["gradient"] = "gradient"
    optimizer: Literal[OPTIMIZERS] = "adam"
    lr: float = Field(default=1e-3, gt=0.0)
    momentum: float = Field(default=0.0, ge=0.0)
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0.0)
    optimizer_args: dict[str, Union[float, bool, tuple[float, float]]] = Field(default_factory=dict)
    optimizer_defaults: Literal["torch", "keras"] = "torch"
    schedule: ScheduleName = "none"
    schedule_args: dict[str, float] = Field(default_factory=dict)
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=128, ge=1)
    early_stopping: int | None = Field(default=None, ge=1, description="patience in epochs")
    min_delta: float = Field(default=0.0, ge=0.0)
    restore_best: bool = True
    grad_clip: float | None = Field(default=None, gt=0.0)

    @property
    def budget(self) -> int:
        return self.epochs

    def summary(self, done: int | None) -> str:
        return (f"{self.optimizer} lr {self.lr:g}, batch {self.batch_size}, {self.progress(done)}, "
                f"loss {self.loss}, seed {self.seed}")

    @model_validator(mode="after")
    def _nesterov(self) -> "GradientTrain":
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer 'sgd' with momentum > 0")
        return self


SPEC = GradientTrain
