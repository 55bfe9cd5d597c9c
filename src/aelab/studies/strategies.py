"""Search strategies behind one small interface (Optuna's ``samplers/_base.py``
habit): a strategy names the Optuna sampler that proposes configurations and
the configurations to queue before sampling starts.

The architecture-evolution strategies choose their configurations from the
study's history instead of a sampler (see
:mod:`aelab.studies.architecture.propose`); they register here for their
names and budgets.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import optuna

from ..errors import ConfigError
from .space import Param, encode, grid_points


class Strategy(ABC):
    """How a study chooses the configurations it trains."""

    name: str = ""
    # Whether its proposals do not depend on earlier trials' results, so a
    # worker may ask several at once and train them together (fused) and
    # get the very trials it would have got one by one.
    independent: bool = False

    @abstractmethod
    def sampler(self, params: list[Param], seed: int) -> optuna.samplers.BaseSampler:
        """The sampler that proposes new configurations."""

    def queued(self, params: list[Param]) -> list[dict[str, Any]]:
        """Configurations enqueued once, when the study is created."""
        return []

    def budget(self, params: list[Param], trials: int | None) -> int:
        """How many trials the study runs in all."""
        if trials is None:
            raise ConfigError(f"strategy {self.name}: needs a trial budget (trials: N or --trials N)")
        return trials


class Grid(Strategy):
    """Every point of the Cartesian product, each exactly once."""

    name = "grid"
    independent = True

    def sampler(self, params, seed):
        return optuna.samplers.RandomSampler(seed=seed)  # never consulted: all points are queued

    def queued(self, params):
        return grid_points(params)

    def budget(self, params, trials):
        size = len(grid_points(params))
        if trials is not None and trials < size:
            raise ConfigError(f"grid: {size} configurations do not fit in --trials {trials}; "
                              f"raise the budget or shrink the space")
        return size


class Random(Strategy):
    """Independent uniform draws: a draw never reads the results."""

    name = "random"
    independent = True

    def sampler(self, params, seed):
        return optuna.samplers.RandomSampler(seed=seed)


class TPE(Strategy):
    """Tree-structured Parzen estimator (Bergstra et al. 2011), multivariate."""

    name = "tpe"

    def sampler(self, params, seed):
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)


class NSGA2(Strategy):
    """NSGA-II (Deb et al. 2002) for several objectives at once."""

    name = "nsga2"

    def sampler(self, params, seed):
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)


class ArticleRule(Strategy):
    """The VAE article's per-individual mutate-and-keep-if-better rounds."""

    name = "article-rule"

    def sampler(self, params, seed):
        return optuna.samplers.RandomSampler(seed=seed)  # never consulted: proposals come from history


class AgingEvolution(ArticleRule):
    """Regularized evolution (Real et al. 2019)."""

    name = "aging-evolution"


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Grid(), Random(), TPE(), NSGA2(), ArticleRule(),
                                                       AgingEvolution())}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"strategy: unknown {name!r} (known: {', '.join(STRATEGIES)})") from None


def optuna_params(values: dict[str, Any]) -> dict[str, Any]:
    """A configuration as the params dict ``study.enqueue_trial`` expects."""
    return {k: encode(v) for k, v in values.items()}
