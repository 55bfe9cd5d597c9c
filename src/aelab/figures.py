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

import numpy as np
import torch

from .data import Dataset
from .evaluation import eval_split, predict


def run_figures(folder: Path, model: torch.nn.Module, data: Dataset, history: list[dict],
                device, seed: int = 0, stages: list | None = None, kind: str | None = None) -> list[Path]:
    """Render the run's figures into ``folder``; returns the written paths:
    the loss (or fitness) curves of every run, then the figures of the
    model's family (``kind``, default ``model.kind``).  ``stages``
    (gradient-free runs): (generation, best vector) snapshots."""
    from . import plots
    from .models.family import family
    folder.mkdir(parents=True, exist_ok=True)
    if stages:
        paths = [plots.save_fitness_curve(history, folder / "fitness.png", title="Fitness per generation"),
                 _stages_strip(folder, model, data, stages, device)]
    else:
        paths = [plots.save_loss_curves(history, folder / "loss_curves.png", title="Loss per epoch")]
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


def _stages_strip(folder: Path, model, data: Dataset, stages: list, device) -> Path:
    """The GA paper's "stages of evolution": the best individual's outputs
    on (up to 10) training images at evenly spaced generations."""
    from . import plots
    from .training.population import Population
    idx = np.unique(data.y_train, return_index=True)[1][:10] if data.y_train is not None else np.arange(10)
    pick = data.x_train[np.sort(idx)[:10]]
    x = torch.as_tensor(pick, device=device)
    outs = Population(model).reconstruct(torch.stack([v for _, v in stages]), x).cpu().numpy()
    rows = [("target", pick)] + [(f"gen {g}", o) for (g, _), o in zip(stages, outs)]
    return plots.save_reconstruction_rows(rows, folder / "stages.png", title="Stages of evolution (best individual)")


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
    if model.latent_dim == 2:
        n = 15
        grid = torch.as_tensor(plots.latent_grid(n), dtype=torch.float32, device=device)
        images = model.decode(grid).cpu().numpy()
        paths.append(plots.save_manifold(images, n, folder / "manifold.png",
                                         title="Decoded latent manifold (Gaussian quantiles)"))
    return paths


def relative(paths: list[Path], root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p in paths]
