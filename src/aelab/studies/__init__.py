"""Studies: sweeps and searches over any config field, on Optuna storage."""
from .run import StudyResult, prepare, run_study
from .strategies import STRATEGIES, Strategy, get_strategy

__all__ = ["run_study", "prepare", "StudyResult", "Strategy", "STRATEGIES", "get_strategy"]
