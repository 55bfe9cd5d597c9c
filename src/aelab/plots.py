"""Figures for autoencoder runs: loss curves, reconstructions, latent spaces.

Every figure comes in two halves (the pattern of Optuna's visualization
module):

* ``<name>_data(...)`` is pure: numpy in, plain numpy arrays / dicts out.
  All the decisions (which images, which projection, which statistics) live
  here, so they are unit-tested without looking at pixels.
* ``save_<name>(..., path)`` renders that data with matplotlib and writes a
  PNG atomically (temporary name in the same folder, then rename), so a
  killed run never leaves half a picture behind.  It returns the path.

Images may be given as ``(N, C, H, W)`` (C = 1 grey, C = 3 RGB), ``(N, H, W)``
or flat ``(N, D)``; flat rows are reshaped to the most square ``H x W`` that
fits.  Grey values are shown with ``vmin``/``vmax`` taken from the data's own
finite range unless given, and one range is shared by every image in a
figure so originals and reconstructions are comparable.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, safe without a display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from .atomic import atomic_path  # noqa: E402

__all__ = [
    "as_images",
    "tile_images",
    "loss_curve_data",
    "save_loss_curves",
    "reconstruction_grid_data",
    "save_reconstructions",
    "save_reconstruction_rows",
    "latent_scatter_data",
    "save_latent_scatter",
    "latent_grid",
    "save_manifold",
    "save_image_grid",
    "bar_chart_data",
    "save_bar_chart",
]

DPI = 120
LABEL_CMAP = "tab10"  # qualitative, 10 colours: one per digit class
CONTINUOUS_CMAP = "viridis"
IMAGE_CMAP = "gray"
TRAIN_KEYS = ("train_loss", "loss")
VAL_KEYS = ("val_loss",)


# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------

def _to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a float numpy array; torch tensors are detached first."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _near_square(d: int) -> tuple[int, int]:
    """The most square ``(h, w)`` with ``h * w == d`` and ``h <= w``."""
    h = math.isqrt(d)
    while h > 1 and d % h:
        h -= 1
    return max(h, 1), d // max(h, 1)


def as_images(x: Any) -> np.ndarray:
    """Turn a batch into displayable images: ``(N, H, W)`` grey or ``(N, H, W, 3)`` RGB.

    Accepts ``(N, C, H, W)`` with C in {1, 3}, ``(N, H, W)`` and flat ``(N, D)``.
    A flat row is read as RGB (channels first, like ``torch.flatten``) only
    when D is not a square but D/3 is; otherwise as the most square grey image.
    """
    a = _to_numpy(x)
    if a.ndim == 2:
        n, d = a.shape
        side = math.isqrt(d // 3) if d % 3 == 0 else 0
        if math.isqrt(d) ** 2 != d and side > 0 and 3 * side * side == d:
            return a.reshape(n, 3, side, side).transpose(0, 2, 3, 1)
        return a.reshape(n, *_near_square(d))
    if a.ndim == 3:
        return a
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim == 4 and a.shape[1] == 3:
        return a.transpose(0, 2, 3, 1)
    raise ValueError(f"expected images shaped (N, D), (N, H, W) or (N, C, H, W) with C in (1, 3); got {a.shape}")


def _value_range(arrays: Sequence[np.ndarray], vmin: float | None, vmax: float | None) -> tuple[float, float]:
    """Display range: the given bounds, else the finite min/max over all arrays."""
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = np.concatenate([f.ravel() for f in finite]) if finite else np.empty(0)
    lo = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if hi <= lo:  # constant data: any non-empty range shows it
        hi = lo + 1.0
    return lo, hi


def tile_images(images: Any, nrows: int, ncols: int, pad: int = 0, fill: float = np.nan) -> np.ndarray:
    """Lay ``nrows * ncols`` images out row-major in one big array.

    Missing cells and the ``pad`` pixels between cells hold ``fill``.
    Returns ``(nrows*H + (nrows-1)*pad, ncols*W + (ncols-1)*pad[, 3])``.
    """
    imgs = as_images(images)
    if len(imgs) > nrows * ncols:
        raise ValueError(f"{len(imgs)} images do not fit a {nrows}x{ncols} grid")
    h, w = imgs.shape[1:3]
    out = np.full((nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad, *imgs.shape[3:]), fill)
    for k, img in enumerate(imgs):
        r, c = divmod(k, ncols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return out


def _imshow(ax: Any, img: np.ndarray, lo: float, hi: float) -> None:
    """Draw one grey or RGB image on ``ax`` with the shared range ``[lo, hi]``."""
    if img.ndim == 3:  # RGB: imshow ignores vmin/vmax, so scale to [0, 1] here
        ax.imshow(np.clip((np.nan_to_num(img, nan=lo) - lo) / (hi - lo), 0.0, 1.0), interpolation="nearest")
    else:
        ax.imshow(img, cmap=IMAGE_CMAP, vmin=lo, vmax=hi, interpolation="nearest")


def _tile_grid(ax: Any, cells: Sequence[np.ndarray | None], ncols: int, lo: float, hi: float,
               pad: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw equally shaped images (None: an empty cell) as one row-major grid
    in ONE image on ``ax``, cells ``pad`` pixels apart (default: a tenth of
    a cell), gaps and empty cells blank.  Returns the x and y centres of the
    columns and rows in data coordinates, for labels.

    The same picture as one small Axes per image, for a fraction of the cost:
    matplotlib spends most of a 40-image grid creating and laying out Axes.
    """
    shape = next((c.shape for c in cells if c is not None), (1, 1))
    h, w = shape[:2]
    pad = max(1, round(0.1 * max(h, w))) if pad is None else pad
    nrows = math.ceil(len(cells) / ncols)
    big = np.full((nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad, *shape[2:]), np.nan)
    filled = np.zeros(big.shape[:2], dtype=bool)
    for k, img in enumerate(cells):  # display images already, so not through tile_images
        r, c = divmod(k, ncols)
        if img is not None:
            big[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
            filled[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = True
    if big.ndim == 3:  # RGB: scaled here as _imshow does, gaps transparent
        rgb = np.clip((np.nan_to_num(big, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
        ax.imshow(np.dstack([rgb, filled]), interpolation="nearest")
    else:  # gaps are NaN, which shows as the (transparent) "bad" colour, as NaN pixels did
        ax.imshow(big, cmap=IMAGE_CMAP, vmin=lo, vmax=hi, interpolation="nearest")
    _bare(ax)
    ax.tick_params(length=0, pad=2)
    return np.arange(ncols) * (w + pad) + (w - 1) / 2, np.arange(nrows) * (h + pad) + (h - 1) / 2


def _bare(ax: Any) -> None:
    """Hide ticks and frame but keep the axis labels usable (row names)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


@contextmanager
def _figure(width: float, height: float) -> Iterator[Any]:
    """A constrained-layout figure that is always closed, even on error."""
    fig = plt.figure(figsize=(width, height), layout="constrained")
    try:
        yield fig
    finally:
        plt.close(fig)


def _save(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically and return the path.

    Not flushed to disk: the rename already keeps a killed process from
    leaving half a picture, and a figure lost to a power loss is drawn again
    by ``aelab evaluate``; a flush per figure only adds disk stalls.
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI)
    return target


def _cell_size(ncols: int) -> float:
    """Inches per image cell: 1.0, shrinking so wide grids stay under ~14 in."""
    return min(1.0, 14.0 / max(ncols, 1))


# --------------------------------------------------------------------------
# 1. loss curves
# --------------------------------------------------------------------------

def _metric(record: Mapping[str, Any], keys: Sequence[str]) -> float:
    """The first of ``keys`` present in ``record`` as a float; NaN if absent, None or non-finite."""
    for key in keys:
        if key in record and record[key] is not None:
            try:
                value = float(record[key])
            except (TypeError, ValueError):
                return math.nan
            return value if math.isfinite(value) else math.nan
    return math.nan


def loss_curve_data(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-epoch train / validation losses from a training history.

    Each record is a dict; the train loss is read from ``train_loss`` (or
    ``loss``), the validation loss from ``val_loss``, the epoch from ``epoch``
    (default: 1-based position).  Missing, None or non-finite values become
    NaN so a diverged epoch shows as a gap instead of breaking the axes.
    Returns ``epochs``, ``train_loss``, ``val_loss`` (arrays of equal length),
    ``has_val`` and ``best_epoch`` / ``best_val_loss`` (None without val data).
    """
    epochs = np.array([_metric(r, ("epoch",)) for r in history], dtype=float)
    fallback = np.arange(1, len(history) + 1, dtype=float)
    epochs = np.where(np.isnan(epochs), fallback, epochs)
    train = np.array([_metric(r, TRAIN_KEYS) for r in history], dtype=float)
    val = np.array([_metric(r, VAL_KEYS) for r in history], dtype=float)
    has_val = bool(np.isfinite(val).any())
    best = int(np.nanargmin(val)) if has_val else None
    return {
        "epochs": epochs,
        "train_loss": train,
        "val_loss": val,
        "has_val": has_val,
        "best_epoch": float(epochs[best]) if best is not None else None,
        "best_val_loss": float(val[best]) if best is not None else None,
    }


def save_loss_curves(history: Sequence[Mapping[str, Any]], path: str | Path,
                     title: str | None = None, logy: bool = False) -> Path:
    """Plot train (and validation) loss per epoch, marking the best validation epoch."""
    data = loss_curve_data(history)
    with _figure(6.0, 4.0) as fig:
        ax = fig.subplots()
        ax.plot(data["epochs"], data["train_loss"], marker=".", color="C0", label="train")
        if data["has_val"]:
            ax.plot(data["epochs"], data["val_loss"], marker=".", color="C1", label="validation")
            ax.plot([data["best_epoch"]], [data["best_val_loss"]], "o", mfc="none", ms=10, color="C3",
                    label=f"best val {data['best_val_loss']:.4g} (epoch {data['best_epoch']:g})")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title or "Loss per epoch")
        ax.grid(alpha=0.3)
        if len(data["epochs"]):
            ax.legend()
        return _save(fig, path)


def save_curves(history: Sequence[Mapping[str, Any]], keys: Sequence[str], path: str | Path,
                title: str, ylabel: str = "value") -> Path:
    """One line per history column in ``keys`` against the epoch (e.g. a
    GAN's discriminator and generator losses)."""
    epochs = [r.get("epoch") for r in history]
    with _figure(6.0, 4.0) as fig:
        ax = fig.subplots()
        for i, key in enumerate(keys):
            ax.plot(epochs, [r.get(key, float("nan")) for r in history], marker=".", color=f"C{i}", label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if epochs:
            ax.legend()
        return _save(fig, path)


# --------------------------------------------------------------------------
# 2. originals vs reconstructions
# --------------------------------------------------------------------------

def _pick_indices(count: int, n: int, y: np.ndarray | None) -> np.ndarray:
    """``n`` indices: first occurrence of each label (label order), then the rest in order."""
    n = min(n, count)
    if y is None:
        return np.arange(n)
    _, first = np.unique(y, return_index=True)  # sorted by label value
    chosen = list(first[:n])
    taken = set(chosen)
    chosen += [i for i in range(count) if i not in taken][: n - len(chosen)]
    return np.asarray(chosen, dtype=int)


def reconstruction_grid_data(x: Any, x_hat: Any, n: int = 10,
                             y: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pick ``n`` originals with their reconstructions, one per class first when labels are given.

    Returns ``(originals, recons, labels)`` as display images (see
    :func:`as_images`) and the picked labels (None without ``y``).
    """
    originals, recons = as_images(x), as_images(x_hat)
    if len(originals) != len(recons):
        raise ValueError(f"x has {len(originals)} images but x_hat has {len(recons)}")
    labels = None if y is None else np.asarray(y).reshape(-1)
    if labels is not None and len(labels) != len(originals):
        raise ValueError(f"x has {len(originals)} images but y has {len(labels)} labels")
    idx = _pick_indices(len(originals), n, labels)
    return originals[idx], recons[idx], (None if labels is None else labels[idx])


def save_reconstruction_rows(rows: Sequence[tuple[str, Any]], path: str | Path, title: str | None = None,
                             col_labels: Sequence[Any] | None = None,
                             vmin: float | None = None, vmax: float | None = None) -> Path:
    """Several labelled rows of images in one figure, one shared grey range.

    Typically the originals on top and one row per model below, e.g. the
    outputs of 1-, 2- and 3-hidden-layer autoencoders on the same inputs.
    """
    named = [(str(name), as_images(imgs)) for name, imgs in rows]
    if not named:
        raise ValueError("save_reconstruction_rows needs at least one row")
    lo, hi = _value_range([imgs for _, imgs in named], vmin, vmax)
    ncols = max(max(len(imgs) for _, imgs in named), 1)
    cell = _cell_size(ncols)
    labels = [str(label) for label in list(col_labels or [])[:ncols]]
    if len({imgs.shape[1:] for _, imgs in named if len(imgs)}) == 1:  # the usual case: one image size
        with _figure(cell * ncols + 1.6, cell * len(named) + 0.6) as fig:
            ax = fig.subplots()
            cells = [imgs[c] if c < len(imgs) else None for _, imgs in named for c in range(ncols)]
            xs, ys = _tile_grid(ax, cells, ncols, lo, hi)
            ax.set_yticks(ys, [name for name, _ in named], fontsize=9)
            if labels:
                ax.xaxis.set_ticks_position("top")
                ax.set_xticks(xs[:len(labels)], labels, fontsize=9)
            fig.suptitle(title or "Reconstructions")
            return _save(fig, path)
    with _figure(cell * ncols + 1.6, cell * len(named) + 0.6) as fig:  # rows of different image sizes
        axes = fig.subplots(len(named), ncols, squeeze=False)
        for r, (name, imgs) in enumerate(named):
            for c in range(ncols):
                ax = axes[r, c]
                _bare(ax)
                if c < len(imgs):
                    _imshow(ax, imgs[c], lo, hi)
                else:
                    ax.set_visible(False)
            axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        for c, label in enumerate(labels):
            axes[0, c].set_title(label, fontsize=9)
        fig.suptitle(title or "Reconstructions")
        return _save(fig, path)


def save_reconstructions(x: Any, x_hat: Any, path: str | Path, n: int = 10, y: Any = None,
                         title: str | None = None, vmin: float | None = None, vmax: float | None = None) -> Path:
    """Two rows: ``n`` originals on top, their reconstructions below (labels as column titles)."""
    originals, recons, labels = reconstruction_grid_data(x, x_hat, n=n, y=y)
    return save_reconstruction_rows([("original", originals), ("reconstruction", recons)], path,
                                    title=title or "Originals vs reconstructions",
                                    col_labels=None if labels is None else list(labels),
                                    vmin=vmin, vmax=vmax)


# --------------------------------------------------------------------------
# 3. latent scatter
# --------------------------------------------------------------------------

def latent_scatter_data(z: Any, y: Any = None, max_points: int = 5000, seed: int = 0) -> dict[str, Any]:
    """2-D coordinates for a scatter plot of latent codes.

    * 2-D codes are used as they are (``method='identity'``);
    * codes with more dimensions are projected with PCA, fitted on all finite
      rows (``method='pca'``, ``explained_variance_ratio`` of PC1, PC2);
    * 1-D codes are plotted against a uniform jitter in [-0.5, 0.5]
      (``method='jitter'``) so their density stays visible.

    Rows with a non-finite value are dropped (counted in ``n_dropped``); then,
    if more than ``max_points`` remain, a fixed-seed random subset is kept (in
    original order).  Returns ``xy`` (M, 2), ``labels`` (M,) or None,
    ``indices`` into ``z``, ``method``, ``dim``, ``explained_variance_ratio``
    (None unless PCA), ``axis_labels`` and ``n_total``.
    """
    codes = _to_numpy(z)
    codes = codes.reshape(len(codes), -1) if codes.ndim != 1 else codes[:, None]
    labels = None if y is None else np.asarray(y).reshape(-1)
    if labels is not None and len(labels) != len(codes):
        raise ValueError(f"z has {len(codes)} rows but y has {len(labels)} labels")
    dim = codes.shape[1]
    keep = np.flatnonzero(np.isfinite(codes).all(axis=1))
    n_dropped = len(codes) - len(keep)
    rng = np.random.default_rng(seed)
    evr = None
    if dim == 1:
        xy = np.column_stack([codes[keep, 0], rng.uniform(-0.5, 0.5, len(keep))])
        method, axis_labels = "jitter", ("z1", "jitter")
    elif dim == 2:
        xy, method, axis_labels = codes[keep], "identity", ("z1", "z2")
    else:
        xy, evr = _pca_2d(codes[keep])
        method = "pca"
        axis_labels = (f"PC1 ({100 * evr[0]:.1f}%)", f"PC2 ({100 * evr[1]:.1f}%)")
    if len(keep) > max_points:
        sub = np.sort(rng.choice(len(keep), size=max_points, replace=False))
        keep, xy = keep[sub], xy[sub]
    return {
        "xy": np.asarray(xy, dtype=float).reshape(-1, 2),
        "labels": None if labels is None else labels[keep],
        "indices": keep,
        "method": method,
        "dim": dim,
        "explained_variance_ratio": evr,
        "axis_labels": axis_labels,
        "n_total": len(codes),
        "n_dropped": n_dropped,
    }


def _pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows onto their first two principal components (zero-padded if fewer exist)."""
    k = min(2, *codes.shape)
    xy = np.zeros((len(codes), 2))
    evr = np.zeros(2)
    if k > 0:
        pca = PCA(n_components=k).fit(codes)
        xy[:, :k] = pca.transform(codes)
        evr[:k] = np.nan_to_num(pca.explained_variance_ratio_)
    return xy, evr


def save_latent_scatter(z: Any, y: Any, path: str | Path, title: str | None = None,
                        max_points: int = 5000, seed: int = 0) -> Path:
    """Scatter the latent codes (projected to 2-D if needed), coloured by label.

    Up to 10 distinct labels get 'tab10' colours and a legend; more (or
    continuous) labels get a colourbar; no labels, one colour.
    """
    data = latent_scatter_data(z, y, max_points=max_points, seed=seed)
    xy, labels = data["xy"], data["labels"]
    size = 12.0 if len(xy) <= 1000 else 4.0
    with _figure(6.5, 5.5) as fig:
        ax = fig.subplots()
        if labels is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, color="C0", linewidths=0)
        elif len(np.unique(labels)) <= 10:
            cmap = plt.get_cmap(LABEL_CMAP)
            for k, value in enumerate(np.unique(labels)):
                mask = labels == value
                ax.scatter(xy[mask, 0], xy[mask, 1], s=size, alpha=0.7, color=cmap(k % 10),
                           linewidths=0, label=str(value))
            ax.legend(title="label", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2.5, frameon=False)
        else:
            codes = labels.astype(float) if np.issubdtype(labels.dtype, np.number) else np.unique(labels, return_inverse=True)[1]
            points = ax.scatter(xy[:, 0], xy[:, 1], c=codes, cmap=CONTINUOUS_CMAP, s=size, alpha=0.7, linewidths=0)
            fig.colorbar(points, ax=ax, label="label")
        ax.set_xlabel(data["axis_labels"][0])
        ax.set_ylabel(data["axis_labels"][1])
        ax.set_title(title or _latent_title(data))
        ax.grid(alpha=0.3)
        return _save(fig, path)


def _latent_title(data: Mapping[str, Any]) -> str:
    """Default scatter title naming the projection and how many points are shown."""
    how = {"identity": "", "jitter": " (1-D, jittered)", "pca": f" (PCA of {data['dim']}-D codes)"}[data["method"]]
    shown = f", {len(data['xy'])} of {data['n_total']} points" if len(data["xy"]) < data["n_total"] else ""
    return f"Latent space{how}{shown}"


# --------------------------------------------------------------------------
# 4. decoder manifold
# --------------------------------------------------------------------------

def _grid_axis(n: int, quantile: float) -> np.ndarray:
    """``n`` Gaussian quantiles spread evenly from ``1 - quantile`` to ``quantile``."""
    if n < 1:
        raise ValueError(f"grid size n must be >= 1, got {n}")
    if not 0.5 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0.5, 1), got {quantile}")
    return norm.ppf(np.linspace(1.0 - quantile, quantile, n)) if n > 1 else np.zeros(1)


def latent_grid(n: int = 15, quantile: float = 0.95) -> np.ndarray:
    """An ``(n*n, 2)`` grid of latent points ``(z1, z2)`` at Gaussian quantiles.

    Row-major, as the image tiles will be: z1 increases along each row and z2
    decreases down the rows (top row = largest z2), the layout of the Keras
    VAE example.  Using quantiles rather than a linear range spaces the points
    by equal prior probability mass.
    """
    axis = _grid_axis(n, quantile)
    z2, z1 = np.meshgrid(axis[::-1], axis, indexing="ij")
    return np.column_stack([z1.ravel(), z2.ravel()])


def _even_ticks(n: int, most: int = 8) -> np.ndarray:
    """Cell indices to label: both ends, evenly spaced when possible, at most ``most``."""
    if n <= most:
        return np.arange(n)
    step = next(s for s in range(1, n) if (n - 1) % s == 0 and (n - 1) // s + 1 <= most)
    if (n - 1) // step + 1 >= 4:
        return np.arange(0, n, step)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))  # n - 1 has no useful divisor


def save_manifold(images: Any, n: int, path: str | Path, title: str | None = None,
                  quantile: float | None = None, vmin: float | None = None, vmax: float | None = None) -> Path:
    """Tile the ``n*n`` images decoded from :func:`latent_grid` into one picture.

    Give the grid's ``quantile`` to label the axes with z1 / z2 values.
    """
    imgs = as_images(images)
    if len(imgs) != n * n:
        raise ValueError(f"a {n}x{n} manifold needs {n * n} images, got {len(imgs)}")
    lo, hi = _value_range([imgs], vmin, vmax)
    big = tile_images(imgs, n, n)
    h, w = imgs.shape[1:3]
    with _figure(7.0, 7.0) as fig:
        ax = fig.subplots()
        _imshow(ax, big, lo, hi)
        _bare(ax)
        if quantile is not None:
            axis = _grid_axis(n, quantile)
            ticks = _even_ticks(n)
            ax.set_xticks(ticks * w + (w - 1) / 2, [f"{axis[t]:.2f}" for t in ticks])
            ax.set_yticks(ticks * h + (h - 1) / 2, [f"{axis[::-1][t]:.2f}" for t in ticks])
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
        ax.set_title(title or f"Decoder manifold ({n}x{n})")
        return _save(fig, path)


# --------------------------------------------------------------------------
# 5. image grid
# --------------------------------------------------------------------------

def save_image_grid(images: Any, path: str | Path, ncols: int = 10, title: str | None = None,
                    labels: Sequence[Any] | None = None,
                    vmin: float | None = None, vmax: float | None = None) -> Path:
    """Images in a grid of ``ncols`` columns (e.g. samples from a VAE prior), optional caption each."""
    imgs = as_images(images)
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = max(1, min(ncols, len(imgs)))
    nrows = max(1, math.ceil(len(imgs) / ncols))
    lo, hi = _value_range([imgs], vmin, vmax)
    cell = _cell_size(ncols)
    captions = list(labels) if labels is not None else []
    with _figure(cell * ncols + 0.4, cell * nrows * (1.15 if captions else 1.0) + 0.6) as fig:
        ax = fig.subplots()
        h = imgs.shape[1]
        pad = max(1, round(0.1 * max(imgs.shape[1:3]))) if not captions else max(2, round(0.3 * h))
        xs, ys = _tile_grid(ax, list(imgs) + [None] * (nrows * ncols - len(imgs)), ncols, lo, hi, pad)
        for k, caption in enumerate(captions[:len(imgs)]):  # just above its image, in the gap
            r, c = divmod(k, ncols)
            ax.text(xs[c], ys[r] - h / 2 - 0.5, str(caption), fontsize=8, ha="center", va="bottom")
        fig.suptitle(title or "Images")
        return _save(fig, path)


# --------------------------------------------------------------------------
# 6. bar chart with error bars
# --------------------------------------------------------------------------

def bar_chart_data(groups: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Mean and spread per group, e.g. final validation loss per optimizer over seeds.

    Non-finite values (a diverged run) are left out and counted in
    ``n_nonfinite``; ``n`` counts the values used.  ``stds`` is the sample
    standard deviation (ddof=1): 0 for a single value, NaN for none.
    Group order is kept.  Returns ``names``, ``means``, ``stds``, ``n``,
    ``n_nonfinite`` and ``values`` (the finite values per group).
    """
    names, means, stds, counts, bad, values = [], [], [], [], [], []
    for name, raw in groups.items():
        arr = np.asarray([float(v) for v in raw], dtype=float)
        ok = arr[np.isfinite(arr)]
        names.append(str(name))
        values.append(ok)
        counts.append(len(ok))
        bad.append(len(arr) - len(ok))
        means.append(float(ok.mean()) if len(ok) else math.nan)
        stds.append(float(ok.std(ddof=1)) if len(ok) > 1 else (0.0 if len(ok) == 1 else math.nan))
    return {
        "names": names,
        "means": np.asarray(means, dtype=float),
        "stds": np.asarray(stds, dtype=float),
        "n": np.asarray(counts, dtype=int),
        "n_nonfinite": np.asarray(bad, dtype=int),
        "values": values,
    }


def save_bar_chart(groups: Mapping[str, Sequence[float]], path: str | Path, ylabel: str,
                   title: str | None = None) -> Path:
    """Bars of the group means with ±1 sample-std error bars and the individual values as dots."""
    data = bar_chart_data(groups)
    k = len(data["names"])
    x = np.arange(k)
    colors = [plt.get_cmap(LABEL_CMAP)(i % 10) for i in range(k)]
    with _figure(max(4.0, 0.9 * k + 2.0), 4.5) as fig:
        ax = fig.subplots()
        ax.bar(x, np.nan_to_num(data["means"]), yerr=np.nan_to_num(data["stds"]), capsize=4,
               color=colors, alpha=0.75, edgecolor="black", linewidth=0.6)
        rng = np.random.default_rng(0)  # fixed jitter: the same data gives the same picture
        for i, vals in enumerate(data["values"]):
            ax.plot(i + rng.uniform(-0.15, 0.15, len(vals)), vals, "o", ms=3.5, color="black", alpha=0.7)
        ticks = [f"{name}\n(n={n})" for name, n in zip(data["names"], data["n"])]
        long = k > 6 or any(len(name) > 10 for name in data["names"])
        ax.set_xticks(x, ticks, rotation=30 if long else 0, ha="right" if long else "center")
        ax.set_ylabel(ylabel)
        ax.set_title(title or f"{ylabel} (mean ± std)")
        ax.grid(axis="y", alpha=0.3)
        return _save(fig, path)


# --------------------------------------------------------------------------
# 7. latent spaces side by side
# --------------------------------------------------------------------------

import json  # noqa: E402  (used by the figures below)

__all__ += ["latent_panels_data", "save_latent_panels", "metric_vs_param_data", "save_metric_vs_param",
            "pareto_data", "save_pareto"]


def latent_panels_data(panels: Sequence[tuple[str, Any, Any]], max_points: int = 3000,
                       seed: int = 0) -> list[dict[str, Any]]:
    """:func:`latent_scatter_data` for each named ``(name, z, y)`` panel, plus its ``name``.

    Used to put the latent spaces of several models (e.g. 1, 2 and 3 hidden
    layers) next to each other; each panel is projected on its own (PCA
    above 2-D) because different models' latent axes have nothing in common.
    """
    return [{**latent_scatter_data(z, y, max_points=max_points, seed=seed), "name": str(name)}
            for name, z, y in panels]


def _label_colors(panels: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, bool]:
    """The labels found in any panel (sorted) and whether they fit one qualitative palette."""
    found = [p["labels"] for p in panels if p["labels"] is not None and len(p["labels"])]
    values = np.unique(np.concatenate(found)) if found else np.empty(0)
    return values, 0 < len(values) <= 10


def _latent_panel(ax: Any, panel: Mapping[str, Any], values: np.ndarray, qualitative: bool) -> Any:
    """Draw one panel of :func:`save_latent_panels`; returns the artist a legend or colour bar needs."""
    xy, labels = panel["xy"], panel["labels"]
    size = 10.0 if len(xy) <= 1000 else 4.0
    artist = None
    if labels is None or not len(values):
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.6, color="C0", linewidths=0)
    elif qualitative:  # label value k always gets colour k, whichever panel it appears in
        for k, value in enumerate(values):
            mask = labels == value
            if mask.any():
                ax.scatter(xy[mask, 0], xy[mask, 1], s=size, alpha=0.7, color=plt.get_cmap(LABEL_CMAP)(k),
                           linewidths=0, label=str(value))
    else:
        numeric = np.issubdtype(values.dtype, np.number)  # else colour by rank of the sorted labels
        codes = labels.astype(float) if numeric else np.searchsorted(values, labels)
        top = values if numeric else np.arange(len(values))
        artist = ax.scatter(xy[:, 0], xy[:, 1], c=codes, cmap=CONTINUOUS_CMAP, vmin=top[0], vmax=top[-1],
                            s=size, alpha=0.7, linewidths=0)
    how = f"\nPCA of {panel['dim']}-D codes" if panel["method"] == "pca" else ""
    ax.set_title(f"{panel['name']}{how}", fontsize=9)
    ax.set_xlabel(panel["axis_labels"][0], fontsize=8)
    ax.set_ylabel(panel["axis_labels"][1], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    return artist


def save_latent_panels(panels: Sequence[tuple[str, Any, Any]], path: str | Path, title: str | None = None,
                       ncols: int = 3, max_points: int = 3000, seed: int = 0) -> Path:
    """One latent scatter per ``(name, z, y)`` panel in a grid, coloured by label with one shared legend.

    A label keeps its colour in every panel; more than 10 distinct labels
    switch to a continuous colour map with one shared colour bar.
    """
    data = latent_panels_data(panels, max_points=max_points, seed=seed)
    if not data:
        raise ValueError("save_latent_panels needs at least one panel")
    ncols = max(1, min(ncols, len(data)))
    nrows = math.ceil(len(data) / ncols)
    values, qualitative = _label_colors(data)
    with _figure(3.7 * ncols + (0.9 if len(values) else 0.0), 3.5 * nrows + 0.5) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.ravel()[len(data):]:
            ax.set_visible(False)
        artists = [_latent_panel(ax, panel, values, qualitative) for ax, panel in zip(axes.ravel(), data)]
        if qualitative:
            cmap = plt.get_cmap(LABEL_CMAP)
            handles = [plt.Line2D([], [], ls="", marker="o", color=cmap(k), label=str(v))
                       for k, v in enumerate(values)]
            fig.legend(handles=handles, title="label", loc="outside right center", frameon=False)
        elif len(values):
            fig.colorbar(next(a for a in artists if a is not None), ax=axes.ravel().tolist(), label="label")
        fig.suptitle(title or "Latent spaces")
        return _save(fig, path)


# --------------------------------------------------------------------------
# 8. a metric against one searched parameter
# --------------------------------------------------------------------------

def _category(value: Any) -> str:
    """A category's display name: strings as they are, anything else (lists, numbers) as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def metric_vs_param_data(xs: Sequence[Any], ys: Sequence[float], categorical: bool,
                         order: Sequence[Any] | None = None, jitter: float = 0.15,
                         seed: int = 0) -> dict[str, Any]:
    """Points ``(x, y)`` of a metric against a parameter, one per trained run.

    Points whose metric (or, for a numeric parameter, whose value) is not
    finite are dropped and counted in ``n_dropped``.  Numeric: ``x`` and
    ``y`` sorted by x.  Categorical: each value becomes a column (``categories``
    are display names, in the order of ``order`` -- e.g. the searched choices --
    then of first appearance), ``position`` is the column of each point, ``x``
    that column plus a fixed-seed jitter of ±``jitter``, and ``means`` / ``n``
    summarize each column.
    """
    y = np.asarray([float(v) for v in ys], dtype=float)
    if len(xs) != len(y):
        raise ValueError(f"{len(xs)} parameter values but {len(y)} metric values")
    if not categorical:
        x = np.asarray([float(v) for v in xs], dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        idx = np.argsort(x[keep], kind="stable")
        return {"categorical": False, "x": x[keep][idx], "y": y[keep][idx], "n_dropped": int((~keep).sum())}
    keep = np.isfinite(y)
    names = [_category(v) for v, ok in zip(xs, keep) if ok]
    known = [_category(v) for v in (order or [])]
    categories = [c for c in dict.fromkeys([*known, *names]) if c in set(names)]
    position = np.asarray([categories.index(n) for n in names], dtype=int)
    y = y[keep]
    means = np.asarray([y[position == k].mean() for k in range(len(categories))], dtype=float)
    noise = np.random.default_rng(seed).uniform(-jitter, jitter, len(y))
    return {"categorical": True, "categories": categories, "position": position, "x": position + noise,
            "y": y, "means": means, "n": np.bincount(position, minlength=len(categories)),
            "n_dropped": int((~keep).sum())}


def save_metric_vs_param(xs: Sequence[Any], ys: Sequence[float], path: str | Path, xlabel: str, ylabel: str,
                         categorical: bool, log: bool = False, title: str | None = None,
                         order: Sequence[Any] | None = None) -> Path:
    """Scatter one metric against one parameter: numeric x (log scale if ``log``) or one
    column per category with jittered points and the column mean as a red bar."""
    data = metric_vs_param_data(xs, ys, categorical, order=order)
    k = len(data.get("categories", []))
    long = any(len(c) > 12 for c in data.get("categories", []))
    with _figure(max(5.0, 0.9 * k + 2.0) if categorical else 6.0, 4.5 if long else 4.0) as fig:
        ax = fig.subplots()
        ax.plot(data["x"], data["y"], "o", ms=4, color="C0", alpha=0.7, label="one run")
        if categorical:
            ax.hlines(data["means"], np.arange(k) - 0.3, np.arange(k) + 0.3, lw=2.5, color="C3", label="mean")
            ax.set_xticks(np.arange(k), data["categories"], rotation=30 if long else 0,
                          ha="right" if long else "center")
            ax.set_xlim(-0.6, k - 0.4)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        elif log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title or f"{ylabel} against {xlabel}")
        ax.grid(alpha=0.3)
        return _save(fig, path)


# --------------------------------------------------------------------------
# 9. Pareto front of two objectives
# --------------------------------------------------------------------------

def pareto_data(points: Any, directions: tuple[str, str]) -> dict[str, Any]:
    """Which of ``n`` points ``(objective 1, objective 2)`` are Pareto-optimal.

    ``directions`` holds ``'min'`` or ``'max'`` per objective.  A point is
    dominated when another is at least as good in both objectives and
    strictly better in one; points with a non-finite value are never on the
    front.  Returns ``points`` (n, 2), ``mask`` (n,) of non-dominated points,
    ``front`` (their indices sorted by objective 1) and ``step`` -- the
    ``where`` for a step line tracing the front's attainment boundary
    (``'post'`` when objective 1 is minimized, ``'pre'`` when maximized).
    """
    pts = _to_numpy(points).reshape(-1, 2)
    for d in directions:
        if d not in ("min", "max"):
            raise ValueError(f"directions must be 'min' or 'max', got {directions!r}")
    cost = pts * np.array([1.0 if d == "min" else -1.0 for d in directions])  # everything minimized
    finite = np.isfinite(cost).all(axis=1)
    c = cost[finite]
    no_worse = (c[None, :, :] <= c[:, None, :]).all(axis=2)  # [i, j]: j is no worse than i anywhere
    better = (c[None, :, :] < c[:, None, :]).any(axis=2)
    mask = np.zeros(len(pts), dtype=bool)
    mask[np.flatnonzero(finite)] = ~(no_worse & better).any(axis=1)
    front = np.flatnonzero(mask)
    front = front[np.argsort(pts[front, 0], kind="stable")]
    return {"points": pts, "mask": mask, "front": front, "directions": tuple(directions),
            "step": "post" if directions[0] == "min" else "pre"}


def save_pareto(points: Any, directions: tuple[str, str], path: str | Path, labels: Sequence[str] | None = None,
                xlabel: str = "objective 1", ylabel: str = "objective 2", title: str | None = None) -> Path:
    """Every point in grey, the Pareto-optimal ones highlighted, joined by a step line and
    (with ``labels``) named; axis labels get the direction, e.g. ``recon_mse ↓``."""
    data = pareto_data(points, directions)
    pts, mask, front = data["points"], data["mask"], data["front"]
    arrow = {"min": "↓ lower is better", "max": "↑ higher is better"}
    with _figure(6.5, 5.0) as fig:
        ax = fig.subplots()
        ax.plot(pts[~mask, 0], pts[~mask, 1], "o", ms=5, color="0.6", alpha=0.8, label="dominated")
        ax.step(pts[front, 0], pts[front, 1], where=data["step"], color="C3", lw=1.2, alpha=0.8)
        ax.plot(pts[front, 0], pts[front, 1], "o", ms=7, color="C3", label=f"Pareto-optimal ({len(front)})")
        finite_x = pts[np.isfinite(pts[:, 0]), 0]
        middle = (finite_x.min() + finite_x.max()) / 2 if len(finite_x) else 0.0
        for i in front if labels is not None else []:
            right = pts[i, 0] > middle  # label towards the plot's inside so it is not cut off
            ax.annotate(str(labels[i]), pts[i], xytext=(-5 if right else 5, 4), textcoords="offset points",
                        ha="right" if right else "left", fontsize=7)
        ax.set_xlabel(f"{xlabel} ({arrow[directions[0]]})")
        ax.set_ylabel(f"{ylabel} ({arrow[directions[1]]})")
        ax.set_title(title or "Pareto front")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return _save(fig, path)


# ------------------------------------------------------- gradient-free training


def fitness_curve_data(history: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Generations with the best and the mean fitness of the population."""
    get = lambda key: np.array([float(r.get(key, np.nan) or np.nan) for r in history], dtype=float)
    return {"generation": get("epoch"), "best": get("train_loss"), "mean": get("mean_fitness")}


def save_fitness_curve(history: Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None) -> Path:
    """Best and mean fitness (MAE, lower is better) against generation."""
    d = fitness_curve_data(history)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    try:
        ax.plot(d["generation"], d["best"], label="best", color="tab:blue")
        if np.isfinite(d["mean"]).any():
            ax.plot(d["generation"], d["mean"], label="population mean", color="tab:orange", alpha=0.8)
        ax.set(xlabel="generation", ylabel="fitness (MAE, lower is better)", title=title or "Fitness")
        ax.grid(alpha=0.3)
        ax.legend()
        return _save(fig, path)
    finally:
        plt.close(fig)


# ------------------------------------------------------- architecture evolution


def generation_curve_data(generations: Sequence[int], values: Sequence[float], direction: str) -> dict[str, Any]:
    """Per generation: the best value so far, the generation's best and mean.

    ``generations[i]`` and ``values[i]`` belong to one evaluated individual;
    non-finite values (failed trials) are dropped.  ``direction`` is
    ``'min'`` or ``'max'``.
    """
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    g = np.asarray(generations, dtype=int)
    v = np.asarray(values, dtype=float)
    keep = np.isfinite(v)
    g, v = g[keep], v[keep]
    gens = np.unique(g)
    pick = np.min if direction == "min" else np.max
    best = np.array([pick(v[g == k]) for k in gens], dtype=float)
    mean = np.array([v[g == k].mean() for k in gens], dtype=float)
    so_far = np.minimum.accumulate(best) if direction == "min" else np.maximum.accumulate(best)
    return {"generation": gens, "best": best, "mean": mean, "best_so_far": so_far,
            "points": (g, v), "direction": direction}


def save_generation_curve(generations: Sequence[int], values: Sequence[float], direction: str,
                          path: str | Path, ylabel: str, title: str | None = None) -> Path:
    """Every individual as a dot, each generation's mean, and the best so far."""
    d = generation_curve_data(generations, values, direction)
    with _figure(6.5, 4.0) as fig:
        ax = fig.subplots()
        ax.plot(*d["points"], "o", ms=3, color="0.6", alpha=0.6, label="one architecture")
        ax.plot(d["generation"], d["mean"], "-", color="C1", label="generation mean")
        ax.step(d["generation"], d["best_so_far"], where="post", color="C0", lw=2, label="best so far")
        arrow = "↓ lower is better" if direction == "min" else "↑ higher is better"
        ax.set(xlabel="generation", ylabel=f"{ylabel} ({arrow})", title=title or f"{ylabel} by generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        return _save(fig, path)
