"""aelab: a toolkit for autoencoder research.

Declare an experiment as data, get a run directory with metrics, figures,
weights and a report::

    import aelab
    run = aelab.train("configs/mnist-vae.yaml", overrides=["train.epochs=5"], out="runs/try")
    run.metrics["silhouette"]

The public names below are imported on first use (PEP 562), so ``import
aelab`` and the command line start without loading torch or scikit-learn.
"""
from __future__ import annotations

import importlib

from . import threads as _threads
from .version import __version__

_threads.configure()  # before torch loads: OpenMP threads spin only briefly (aelab.threads)

# public name -> the submodule that defines it
_EXPORTS = {
    "train": "api", "train_repeats": "api", "evaluate": "api", "show": "api", "datasets": "api",
    "resolve_device": "api", "sample": "api",
    "Dataset": "data", "load_dataset": "data",
    "AelabError": "errors", "ConfigError": "errors", "DataError": "errors", "ModelSpecError": "errors",
    "RunDirError": "errors",
    "VAE": "models", "Autoencoder": "models", "Classifier": "models", "build_model": "models",
    "count_parameters": "models",
    "Run": "runs", "load_run": "runs", "load_model": "runs",
    "AutoencoderTransformer": "sklearn",
    "Config": "spec", "load_config": "spec",
}
__all__ = [*_EXPORTS, "lso", "__version__"]


def __getattr__(name: str):
    if name == "lso":  # latent-space optimization: aelab.lso
        return importlib.import_module(".lso", __name__)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'aelab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
