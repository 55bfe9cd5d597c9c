"""A small, strict reader for the IDX format (MNIST and its relatives).

IDX layout: two zero bytes, a one-byte type code, a one-byte number of
dimensions, then one big-endian int32 per dimension, then the values in C
order.  Files may be gzip-compressed (``.gz``).  Every problem with a file
becomes a :class:`DataError` whose single line names the file, so a corrupt
download or a mistyped folder is reported instead of crashing deep in numpy.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

#: IDX type code -> big-endian numpy dtype.
TYPE_CODES: dict[int, str] = {
    0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8",
}

#: Standard file stems of a folder of IDX files, keyed by role.
STEMS: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_bytes(path: str | Path) -> bytes:
    """The file's content, decompressed when its name ends in ``.gz``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.suffix != ".gz":
        return p.read_bytes()
    try:
        with gzip.open(p, "rb") as f:
            return f.read()
    except EOFError:
        raise DataError(f"{p}: truncated gzip file (ended before the end-of-stream marker)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{p}: corrupt gzip file ({e})") from None


def parse_idx(data: bytes, path: str | Path, ndim: int, what: str) -> np.ndarray:
    """Decode IDX bytes that must have ``ndim`` dimensions; ``what`` names them
    in error messages ("images", "labels")."""
    want = f"0x00000{0x800 + ndim:03x}"
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, code, dims_n = data[:2], data[2], data[3]
    if zero != b"\0\0" or code not in TYPE_CODES or dims_n != ndim:
        magic = int.from_bytes(data[:4], "big")
        raise DataError(f"{path}: bad magic number 0x{magic:08x}, expected magic {want} for {what}")
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: IDX header cut short ({len(data)} bytes, {ndim} dimensions expected)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    dtype = np.dtype(TYPE_CODES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - 4 - 4 * ndim
    if payload != expected:
        side = "shorter" if payload < expected else "longer"
        raise DataError(f"{path}: payload is {side} than the header says "
                        f"({payload} bytes, expected {expected} for shape {dims})")
    arr = np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_images(path: str | Path) -> np.ndarray:
    """Images of an IDX file as an (N, H, W) array of the file's dtype."""
    return parse_idx(read_bytes(path), path, 3, "images")


def read_labels(path: str | Path) -> np.ndarray:
    """Labels of an IDX file as an (N,) int64 array."""
    return parse_idx(read_bytes(path), path, 1, "labels").astype(np.int64)


def read_pair(images: str | Path, labels: str | Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and (optional) labels, checked to have the same count."""
    x = read_images(images)
    if labels is None:
        return x, None
    y = read_labels(labels)
    if len(x) != len(y):
        raise DataError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    return x, y


def find_files(folder: str | Path) -> dict[str, Path]:
    """The standard IDX files present in ``folder`` (``.gz`` preferred over raw),
    keyed by role; roles whose file is absent are left out."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (data.name 'idx' expects a folder of IDX files)")
    found = {}
    for role, stem in STEMS.items():
        for candidate in (root / f"{stem}.gz", root / stem):
            if candidate.is_file():
                found[role] = candidate
                break
    return found
