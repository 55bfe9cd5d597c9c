"""Validation of the explorer's JSON requests.

Every request body is parsed here before it reaches the model: size, UTF-8,
JSON syntax, shape (a list of codes of exactly ``latent_dim`` numbers),
finite numbers within a bound.  A bad request raises :class:`RequestError`,
which the app answers with a 4xx and a one-line JSON ``{"error": ...}``
whose first word names the field (``body``, ``codes[0][2]``, ``target``...):
400 when the body is not one JSON object, 413 when it is too large, 422
when a field is wrong.  No client input may end in a 500.

What is accepted, and why:

* UTF-8 only (RFC 8259); a leading byte order mark is skipped, as the RFC
  allows.  The Content-Type header is not checked: the body is parsed as
  JSON whatever it says.
* One JSON object.  A repeated key is refused (parsers disagree on which
  copy wins); so is a key the route does not know (:func:`check_keys`), as
  a misspelt optional field would otherwise be silently ignored.
* ``NaN`` / ``Infinity`` (which :mod:`json` reads) and numbers of any size
  get as far as the field, which refuses them by name; values are compared,
  never converted, until they are known to be in range, and an integer
  literal of more than :data:`MAX_INT_DIGITS` digits is read as a float.
* Integers are JSON integers: ``true`` and ``3.0`` are not.
* Nesting deeper than :mod:`json`'s recursion allows is a 400.
"""
from __future__ import annotations

import json

import numpy as np

MAX_BODY = 1 << 20    # bytes
MAX_BATCH = 256       # codes per decode request
MAX_ABS = 1e4         # |value| of one latent coordinate
MAX_INT_DIGITS = 20   # longer integer literals are read as floats (no field allows such a value)
MISSING = object()    # an absent field, as told apart from null


class RequestError(Exception):
    """A malformed request; ``status`` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def parse_body(body: bytes) -> dict:
    """The request body as a JSON object (413 when too large, 400 when not
    UTF-8, not JSON, nested too deeply, not an object or with a repeated key)."""
    if len(body) > MAX_BODY:
        raise RequestError(f"body: {len(body)} bytes, at most {MAX_BODY}", 413)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RequestError(f"body: not UTF-8 ({e.reason} at byte {e.start})", 400) from None
    try:
        data = json.loads(text, parse_int=_int_literal, object_pairs_hook=_unique_keys)
    except ValueError as e:  # json.JSONDecodeError and any other complaint about the text
        raise RequestError(f"body: not valid JSON ({e})", 400) from None
    except RecursionError:
        raise RequestError("body: not valid JSON (nested too deeply)", 400) from None
    if not isinstance(data, dict):
        raise RequestError(f"body: expected a JSON object, got {describe(data)}", 400)
    return data


def _int_literal(text: str) -> int | float:
    """A JSON integer literal: an int, or a float past MAX_INT_DIGITS digits.
    The float (inf past 308 digits) still fails every field's range check by
    name, and a long literal never reaches int(), which refuses more than
    4300 digits with a ValueError and takes quadratic time below that."""
    return int(text) if len(text) <= MAX_INT_DIGITS else float(text)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object from its pairs, refusing a repeated key: which copy wins
    differs between parsers, so the request is ambiguous."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise RequestError(f"body: key {describe(key)} appears more than once", 400)
        seen.add(key)
    return dict(pairs)


def check_keys(data: dict, allowed: tuple[str, ...]) -> dict:
    """``data``, after refusing any key outside ``allowed`` (422): a misspelt
    field such as ``"step"`` would otherwise be ignored without a word."""
    unknown = next((k for k in data if k not in allowed), None)
    if unknown is not None:
        raise RequestError(f"body: unknown key {describe(unknown)}, expected {', '.join(allowed)}")
    return data


def parse_codes(data: dict, dim: int, key: str = "codes", max_batch: int = MAX_BATCH) -> np.ndarray:
    """``data[key]``: 1..max_batch codes of ``dim`` finite numbers -> (B, dim) float32."""
    codes = data.get(key, MISSING)
    if not isinstance(codes, list) or not codes:
        raise RequestError(f"{key}: expected a non-empty list of latent codes, got {describe(codes)}")
    if len(codes) > max_batch:
        raise RequestError(f"{key}: {len(codes)} codes, at most {max_batch} per request", 413)
    return np.stack([parse_code(c, dim, f"{key}[{i}]") for i, c in enumerate(codes)])


def parse_code(code, dim: int, where: str) -> np.ndarray:
    """One latent code: a list of ``dim`` finite numbers of magnitude <= MAX_ABS."""
    if not isinstance(code, list) or len(code) != dim:
        raise RequestError(f"{where}: expected a list of {dim} numbers (the latent dimension), got {describe(code)}")
    for j, v in enumerate(code):
        if not is_coordinate(v):
            raise RequestError(f"{where}[{j}]: expected a finite number within ±{MAX_ABS:g}, got {describe(v)}")
    return np.asarray(code, dtype=np.float32)


def is_coordinate(v) -> bool:
    """A number (not a bool) within ±MAX_ABS.  Compared, not converted: a huge
    int overflows ``math.isfinite`` and ``float()``, but compares exactly;
    NaN fails the comparison and infinities are out of range."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and -MAX_ABS <= v <= MAX_ABS


def parse_int(data: dict, key: str, lo: int, hi: int) -> int:
    """``data[key]``: an integer in ``lo..hi``, neither a bool nor a float
    (``3.0`` too: the page sends integers, and a float is a client bug)."""
    v = data.get(key, MISSING)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise RequestError(f"{key}: expected an integer in {lo}..{hi}, got {describe(v)}")
    return v


def describe(v, width: int = 40) -> str:
    """``v`` for an error message: short, one line and ASCII.  Containers by
    their size only (their repr could be a megabyte, or nested deeper than
    repr recurses), scalars in JSON spelling cut to ``width`` characters."""
    if v is MISSING:
        return "nothing"
    if isinstance(v, list):
        return f"a list of {_count(len(v), 'item')}"
    if isinstance(v, dict):
        return f"an object of {_count(len(v), 'key')}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10 ** MAX_INT_DIGITS:
        return f"an integer of {v.bit_length()} bits"   # json.dumps refuses more than 4300 digits
    text = json.dumps(v) if v is None or isinstance(v, (str, int, float)) else type(v).__name__
    return text if len(text) <= width else text[:width - 3] + "..."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"
