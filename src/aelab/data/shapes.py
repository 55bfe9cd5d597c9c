"""``shapes``: binary 64x64 sprites with known generative factors, in the
style of dSprites (Matthey, Higgins, Hassabis & Lerchner 2017, "dSprites:
Disentanglement testing Sprites dataset"), generated from a seed.

The factor grid is dSprites' own: shape (square, ellipse, heart: 3), scale
(6 values, 0.5 .. 1), orientation (40 values over a full turn), position x
(32 values) and position y (32 values): 3 * 6 * 40 * 32 * 32 = 737,280
combinations, each one image.  The data set is a seeded random sample of
:data:`SIZE` distinct combinations of that grid, not the whole grid: the
whole grid is 3 GB as bytes (12 GB as float32) and over ten minutes per
dense-VAE epoch on a CPU, while 20,000 draws still hold every value of
every factor hundreds of times (about 500 images per orientation, 625 per
x position), which is what the disentanglement metrics condition on.  Two differences from dSprites, both
deliberate: orientation takes 40 values in [0, 2 pi) (dSprites' 40 values
include both 0 and 2 pi, two identical images under two factor values), and
there is no constant colour factor.

Rendering is exact point sampling of each pixel centre against the shape's
implicit inequality (no anti-aliasing, values 0/1 as in dSprites),
vectorized over a chunk of images at once: the 20,000 images take about
one second, so the set is generated in memory at first use in each process
rather than written to the data cache (reading a cached copy back would
save little).  Same seed, same bytes.
"""
from __future__ import annotations

import functools

import numpy as np

#: Factor names, in the column order of the factor matrix.
FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPES = ("square", "ellipse", "heart")
#: The value of each factor index (shape: its index into :data:`SHAPES`).
VALUES = {
    "shape": np.arange(3, dtype=np.float64),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40, endpoint=False),
    "pos_x": np.linspace(0.0, 1.0, 32),
    "pos_y": np.linspace(0.0, 1.0, 32),
}
GRID = tuple(len(VALUES[f]) for f in FACTORS)  # (3, 6, 40, 32, 32)
SIZE = 20_000   # images in the registered data set
SEED = 0        # the seed it is drawn with (data.seed only splits it)
SIDE = 64       # pixels per side, as dSprites
HALF = 0.14     # a square's half-side at scale 1, as a fraction of the image side (18 px at 64)
# Every shape lies within radius sqrt(2) of its centre (in units of HALF * scale),
# so centres range over [MARGIN, 1 - MARGIN] and no sprite leaves the frame.
MARGIN = np.sqrt(2.0) * HALF
CHUNK = 1024    # images rasterised per vectorized step (bounds peak memory)


# ------------------------------------------------------------- factors


def sample_factors(n: int, seed: int) -> np.ndarray:
    """``n`` distinct combinations of the factor grid, drawn uniformly
    without replacement with ``np.random.default_rng(seed)``, as an
    ``(n, 5)`` int64 matrix of value indices, rows in grid order."""
    total = int(np.prod(GRID))
    if not 0 <= n <= total:
        raise ValueError(f"n must be within 0..{total}, got {n}")
    flat = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    return np.stack(np.unravel_index(flat, GRID), axis=1).astype(np.int64)


def factor_values(factors: np.ndarray) -> np.ndarray:
    """Value indices ``(n, 5)`` -> the factor values themselves (float64)."""
    return np.stack([VALUES[f][factors[:, k]] for k, f in enumerate(FACTORS)], axis=1)


# ---------------------------------------------------------- rasterising


def _square(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Half-side 1: max(|x|, |y|) <= 1."""
    return np.maximum(np.abs(px), np.abs(py)) <= 1.0


def _ellipse(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Semi-axes 1.2 (along the orientation) and 0.6."""
    return (px / 1.2) ** 2 + (py / 0.6) ** 2 <= 1.0


def _heart(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """The algebraic heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, lobes up, its
    coordinates scaled by 1.1 and shifted 0.1 up so that it stays within
    radius sqrt(2) like the others."""
    x, y = 1.1 * px, 1.1 * py + 0.1
    r = x * x + y * y - 1.0
    return r * r * r - x * x * y * y * y <= 0.0


MASKS = (_square, _ellipse, _heart)  # in the order of SHAPES


def _local(values: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel centre in each sprite's own frame: shifted to its centre,
    y pointing up, rotated by minus its orientation and divided by its
    half-size, so the shape tests above need no parameters.  Returns two
    ``(n, side, side)`` float32 arrays."""
    grid = (np.arange(side, dtype=np.float64) + 0.5) / side
    span = 1.0 - 2.0 * MARGIN
    cx, cy = MARGIN + span * values[:, 3], MARGIN + span * values[:, 4]
    size = HALF * values[:, 1]
    cos, sin = np.cos(values[:, 2]) / size, np.sin(values[:, 2]) / size
    dx = (grid[None, None, :] - cx[:, None, None]).astype(np.float32)
    dy = (cy[:, None, None] - grid[None, :, None]).astype(np.float32)  # rows grow downwards, y up
    c, s = cos[:, None, None].astype(np.float32), sin[:, None, None].astype(np.float32)
    return c * dx + s * dy, c * dy - s * dx


def render(factors: np.ndarray, side: int = SIDE) -> np.ndarray:
    """The ``(n, 1, side, side)`` uint8 images (0/1) of ``factors``, an
    ``(n, 5)`` matrix of value indices."""
    factors = np.asarray(factors, dtype=np.int64)
    out = np.zeros((len(factors), 1, side, side), dtype=np.uint8)
    for lo in range(0, len(factors), CHUNK):
        part = factors[lo:lo + CHUNK]
        px, py = _local(factor_values(part), side)
        for k, mask in enumerate(MASKS):
            sel = np.flatnonzero(part[:, 0] == k)
            if len(sel):
                out[lo + sel, 0] = mask(px[sel], py[sel])
    return out


def generate(n: int = SIZE, seed: int = SEED, side: int = SIDE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images drawn with ``seed``: (images (n, 1, side, side) uint8,
    labels = the shape index (n,), factors (n, 5) value indices)."""
    factors = sample_factors(n, seed)
    return render(factors, side), factors[:, 0].copy(), factors


@functools.lru_cache(maxsize=None)
def registered_arrays() -> tuple[np.ndarray, ...]:
    """The registered ``shapes`` set (generated once per process), read-only."""
    arrays = generate()
    for a in arrays:
        a.setflags(write=False)
    return arrays
