"""Validation of the explorer's JSON requests.

Every request body is parsed here before it reaches the model: size, JSON
syntax, shape (a list of codes of exactly ``latent_dim`` numbers), finite
numbers within a bound.  A bad request raises :class:`RequestError`, which
the app answers with a 4xx and a JSON ``{"error": ...}`` naming the field.
"""
from __future__ import annotations

import json
import math

import numpy as np

MAX_BODY = 1 << 20    # bytes
MAX_BATCH = 256       # codes per decode request
MAX_ABS = 1e4         # |value| of one latent coordinate


class RequestError(Exception):
    """A malformed request; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def parse_body(body: bytes) -> dict:
    """The request body as a JSON object (413 when too large, 400 when not JSON)."""
    if len(body) > MAX_BODY:
        raise RequestError(f"body: {len(body)} bytes, at most {MAX_BODY}", 413)
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"body: not valid JSON ({e})", 400) from None
    if not isinstance(data, dict):
        raise RequestError("body: expected a JSON object", 400)
    return data


def parse_codes(data: dict, dim: int, key: str = "codes", max_batch: int = MAX_BATCH) -> np.ndarray:
    """``data[key]``: 1..max_batch codes of ``dim`` finite numbers -> (B, dim) float32."""
    codes = data.get(key)
    if not isinstance(codes, list) or not codes:
        raise RequestError(f"{key}: expected a non-empty list of latent codes")
    if len(codes) > max_batch:
        raise RequestError(f"{key}: {len(codes)} codes, at most {max_batch} per request", 413)
    return np.stack([parse_code(c, dim, f"{key}[{i}]") for i, c in enumerate(codes)])


def parse_code(code, dim: int, where: str) -> np.ndarray:
    """One latent code: a list of ``dim`` finite numbers of magnitude <= MAX_ABS."""
    if not isinstance(code, list) or len(code) != dim:
        got = f"{len(code)} values" if isinstance(code, list) else type(code).__name__
        raise RequestError(f"{where}: expected a list of {dim} numbers (the latent dimension), got {got}")
    for j, v in enumerate(code):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > MAX_ABS:
            raise RequestError(f"{where}[{j}]: expected a finite number within ±{MAX_ABS:g}, got {v!r}")
    return np.asarray(code, dtype=np.float32)


def parse_int(data: dict, key: str, allowed: list[int]) -> int:
    """``data[key]``: an integer among ``allowed``."""
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v not in allowed:
        raise RequestError(f"{key}: expected one of {allowed}, got {v!r}")
    return v
