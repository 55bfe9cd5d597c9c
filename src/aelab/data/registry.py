"""The data-set registry under its old name: :mod:`aelab.dataset_registry`
(plain data, importable by the spec without the data package)."""
from ..dataset_registry import (CHECKSUMS, ENTRIES, IDX_FILES, MIRRORS, Entry, Kind,  # noqa: F401
                                cache_dir, dataset_dir)
