"""Keep freed memory in the process while fused groups train (glibc).

A fused step allocates and frees tensors of 0.5-5 MB (K members' batches)
hundreds of times a second.  glibc serves blocks above its mmap threshold
with fresh mappings and gives the top of the heap back to the OS above its
trim threshold, so each such tensor faults its pages in again, zeroed: a
12-member digits-ae group took ~146,000 minor page faults in 50 epochs, 16%
of its time (1.69 s against 2.02 s with this setting; ``docs/benchmarks.md``).
Solo runs' smaller tensors stay under glibc's self-adjusting threshold and
are not affected.  :func:`keep_freed_memory` raises both thresholds once
per process: blocks up to 32 MiB come from the heap, and up to 1 GiB of free
heap is kept for reuse.  Nothing computed changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 1 << 30

_DONE: list[bool] = []


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once); False where the C
    library is not glibc (macOS, Windows, musl): nothing is changed there."""
    if not _DONE:
        _DONE.append(_mallopt())
    return _DONE[0]


def _mallopt() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):
        return False  # musl has no mallopt thresholds to speak of
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
