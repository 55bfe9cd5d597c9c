"""Models declared as data: the layer vocabulary, mirrored decoders, and the
model families (:mod:`aelab.models.family`).  Names are imported on first
use, so the family registry and the specs load without torch."""
from __future__ import annotations

import importlib

_EXPORTS = {"Autoencoder": "autoencoder", "VAE": "autoencoder", "Classifier": "autoencoder",
            "kld": "autoencoder", "build_model": "build", "count_parameters": "build",
            "output_range_warning": "build", "family": "family", "families": "family", "Family": "family"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
