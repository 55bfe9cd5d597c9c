"""The ``train`` section: one spec per training method, told apart by
``method`` (default ``gradient``), and the ``track`` section.

Each method's spec holds only what that method reads: a GA config carries
no optimizer, a gradient config no population, and config.yaml writes only
the method's fields.  The fields every method shares (loss, seed, device,
threads, the checkpoint policy) live in :class:`TrainBase`.  The trainer
registry (:mod:`aelab.training.registry`) maps each ``method`` to its spec
class and its trainer; this module imports neither torch nor a trainer, so
reading a config stays fast.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from .spec_base import Strict

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam")
ScheduleName = Literal["none", "step", "exponential", "cosine", "plateau"]
CHECKPOINT_SECONDS = 10.0  # the default checkpoint policy: bounds lost work and the checkpointing share


class TrainBase(Strict):
    """What every training method has: the loss it reports, the seed, where
    it runs, and when it writes its checkpoint."""

    method: str = "gradient"
    loss: Literal["mse", "mae", "bce"] = "mse"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(ge=1, le=4096)] | Literal["auto"] = Field(
        default="auto", description="CPU threads for torch: a number, or auto (the CPUs other processes "
        "leave free; $AELAB_THREADS or --threads when set); aelab.threads")
    checkpoint_every: int | None = Field(
        default=None, ge=1,
        description="checkpoint after at most this many epochs (GA/ES: generations) since the last one")
    checkpoint_seconds: float | None = Field(
        default=None, ge=0.0,
        description=f"checkpoint once this many seconds have passed since the last one (and after the first "
                    f"epoch); with neither field set: {CHECKPOINT_SECONDS:g}. Whichever is set, whichever comes "
                    f"first when both are; always at the end. A killed run replays at most that much work")

    # What the run's budget is, in what unit, and how it says what it trained:
    # plain facts about the spec, so ``aelab show`` and reports need no torch.
    unit: ClassVar[str] = "epoch"  # one row of its history: "epoch", "generation"

    @property
    def budget(self) -> int:
        """Units (epochs, generations) the run asks for."""
        raise NotImplementedError

    @property
    def time_budget(self) -> float | None:
        """Seconds the run may take at most (None: no limit)."""
        return None

    @property
    def loss_name(self) -> str:
        """What the progress bar calls the number the run drives down."""
        return "loss"

    def progress(self, done: int | None) -> str:
        return f"{done}/{self.budget} {self.unit}s" if done is not None else f"{self.budget} {self.unit}s"

    def summary(self, done: int | None) -> str:
        """One line: what it trains and how far it got (``done`` units)."""
        raise NotImplementedError

    @model_validator(mode="before")
    @classmethod
    def _checkpoint_policy(cls, data: Any) -> Any:
        """Neither checkpoint field set: every CHECKPOINT_SECONDS (written
        out, so config.yaml says what the run did)."""
        if isinstance(data, dict) and data.get("checkpoint_every") is None \
                and data.get("checkpoint_seconds") is None:
            data = {**data, "checkpoint_seconds": CHECKPOINT_SECONDS}
        return data


class EvolutionTrain(TrainBase):
    """What the gradient-free methods share: a population scored on
    ``fitness`` (the GA paper's MAE by default), a budget of generations
    and/or seconds, and a history row every ``log_every`` generations."""

    population: int = Field(default=20, ge=2)
    generations: int = Field(default=1000, ge=1)
    max_seconds: float | None = Field(default=None, gt=0.0)
    sigma: float = Field(default=0.05, gt=0.0, description="GA: gaussian mutation scale; ES: noise scale")
    fitness_batch: int | None = Field(default=None, ge=1, description="samples per generation; all if unset")
    fitness: Literal["mae", "mse"] = Field(default="mae", description="what evolution minimizes (the paper: MAE)")
    log_every: int = Field(default=10, ge=1, description="generations between history rows")

    unit: ClassVar[str] = "generation"

    @property
    def budget(self) -> int:
        return self.generations

    @property
    def time_budget(self) -> float | None:
        return self.max_seconds

    @property
    def loss_name(self) -> str:
        return self.fitness

    def summary(self, done: int | None) -> str:
        limit = f" (at most {self.max_seconds:g} s)" if self.max_seconds is not None else ""
        return f"{self.how()}, {self.progress(done)}{limit}, fitness {self.fitness}, seed {self.seed}"

    def how(self) -> str:
        """The method and its settings, e.g. ``GA, population 20, ...``."""
        raise NotImplementedError

    @property
    def strategy(self) -> str:
        """The name of the strategy that evolves the population (aelab.training.strategies)."""
        raise NotImplementedError


class TrackSpec(Strict):
    """An experiment tracker (aelab.training.trackers; docs/reports.md)."""

    backend: Literal["tensorboard", "mlflow"] | None = Field(
        default=None, description="log metrics, config and figures to TensorBoard or MLflow")
    uri: str | None = Field(
        default=None, description="tensorboard: log dir; mlflow: tracking URI (default: inside the run dir)")


# Fields the one flat ``train`` section of earlier versions gave every
# method, with the defaults its config.yaml wrote out.  Such a file still
# loads: a field of another method at this value is dropped; any other value
# is one line naming the methods that have it.
LEGACY_TRAIN_DEFAULTS = {
    "optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
    "optimizer_args": {}, "optimizer_defaults": "torch", "schedule": "none", "schedule_args": {},
    "epochs": 20, "batch_size": 128, "early_stopping": None, "min_delta": 0.0, "restore_best": True,
    "grad_clip": None, "population": 20, "generations": 1000, "max_seconds": None, "mutated_weights": 10,
    "elitism": 1, "selection": "best", "tournament_size": 3, "crossover": "none", "mutation": "uniform",
    "mutation_rate": 0.01, "sigma": 0.05, "adaptive": False, "es": "openai", "fitness_batch": None,
    "fitness": "mae", "log_every": 10}
MOVED = {"track": "track.backend", "track_uri": "track.uri"}  # train.X -> its section of its own
