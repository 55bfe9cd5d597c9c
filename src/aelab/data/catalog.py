"""What data sets exist: one :class:`DatasetInfo` per name a spec accepts.

Reads only the registry and the download cache, so listing the data sets
(``aelab datasets``) needs neither numpy nor the data themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import download, registry


@dataclass
class DatasetInfo:
    """One row of ``aelab datasets``.  For ``npz``/``idx`` the shape and size
    depend on the user's file and are reported as (0, 0, 0) and 0."""

    name: str
    shape: tuple[int, int, int]
    size: int
    source: str
    offline: bool

    @property
    def shape_str(self) -> str:
        """``'1x28x28'``, or ``'-'`` when the shape depends on a user file."""
        return "x".join(map(str, self.shape)) if self.size else "-"


def list_datasets() -> list[DatasetInfo]:
    """One :class:`DatasetInfo` per data set name a spec accepts.  ``offline``
    is True for embedded sets, user files, and downloads already cached."""
    out = []
    for name in registry.ENTRIES:
        e = registry.ENTRIES[name]
        offline = download.is_cached(name) if e.downloads else True
        out.append(DatasetInfo(name, e.shape, e.size, e.source, offline))
    return out
