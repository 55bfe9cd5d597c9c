"""The figures every run writes into ``figures/``.

Loss curves for every run, then what the model's family draws: originals
against reconstructions and the latent codes coloured by label (PCA above
2-D) for autoencoders; samples from the prior and, for a 2-D latent space,
the decoded manifold for generative ones.  Rendering lives in :mod:`aelab.plots`,
imported when a figure is drawn (matplotlib costs ~0.3 s to import; a run
with ``eval.figures: false`` never pays it).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .data import Dataset
from .evaluation import eval_split, predict
from .models.family import CONDITIONAL, capabilities_of


def run_figures(folder: Path, model: torch.nn.Module, data: Dataset, history: list[dict],
                device, seed: int = 0, stages: list | None = None, kind: str | None = None,
                method: str = "gradient") -> list[Path]:
    """Render the run's figures into ``folder``; returns the written paths:
    the trainer's own (``method``: loss curves; fitness curve and, given
    ``stages``, the stages of evolution), then the figures of the model's
    family (``kind``, default ``model.kind``)."""
    from .models.family import family
    from .training.registry import trainer
    folder.mkdir(parents=True, exist_ok=True)
    paths = trainer(method).figures(folder, model, data, history, device, stages)
    return paths + family(kind or model.kind).figures(folder, model, data, device, seed)


def autoencoder_figures(folder: Path, model, data: Dataset, device) -> list[Path]:
    """Originals against reconstructions, and the codes coloured by label."""
    from . import plots
    x, y, split = eval_split(data)
    out = predict(model, x, device, y=y)
    return [plots.save_reconstructions(x, out["x_hat"], folder / "reconstructions.png", n=10, y=y,
                                       title=f"Originals (top) and reconstructions ({split} split)"),
            plots.save_latent_scatter(out["z"], y, folder / "latent_scatter.png",
                                      title=f"Latent codes ({split} split)")]


@torch.no_grad()
def prior_figures(folder: Path, model, device, seed: int) -> list[Path]:
    """Samples from the prior N(0, I) and, for a 2-D latent space, the decoded
    manifold (for a generative, unconditional model)."""
    from . import plots
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    samples = model.sample(40, generator=gen).cpu().numpy()
    paths = [plots.save_image_grid(samples, folder / "samples.png", ncols=10,
                                   title="Random samples from the prior N(0, I)")]
    if model.latent_dim == 2 and CONDITIONAL not in capabilities_of(model):  # one manifold per class otherwise
        n = 15
        grid = torch.as_tensor(plots.latent_grid(n), dtype=torch.float32, device=device)
        images = model.decode(grid).cpu().numpy()
        paths.append(plots.save_manifold(images, n, folder / "manifold.png",
                                         title="Decoded latent manifold (Gaussian quantiles)"))
    return paths


@torch.no_grad()
def class_grid(folder, model, device, seed: int, per_class: int = 10):
    """Samples per class of a conditional generative model: row k holds
    ``per_class`` prior draws decoded as class k."""
    from .plots import save_image_grid
    model.eval()
    y = torch.arange(model.num_classes).repeat_interleave(per_class)
    samples = model.sample(len(y), y, generator=torch.Generator().manual_seed(seed)).cpu().numpy()
    return save_image_grid(samples, folder / "class_samples.png", ncols=per_class,
                           title=f"Samples per class (row k: class k, {per_class} draws from N(0, I))")


def relative(paths: list[Path], root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p in paths]
