"""Latent-space optimization (LSO): generate samples that a classifier calls
the target, by moving a decoder's latent vector (the LSO paper: Nothnagel
2024, "Combining Autoencoders and Classifiers for Latent Space
Optimization").

A decoder and a classifier, trained as ordinary runs, are composed into one
network ``z -> decoder -> classifier -> probabilities``
(:func:`compose`); the latent vector ``z`` is optimized to minimize the
squared error between the probabilities and a target vector, and the
decoder's output is the generated sample.  ``space="pixels"`` optimizes the
classifier's input directly (the paper's "simple input optimization").

Batch use (what ``aelab lso`` runs)::

    from aelab import lso
    setup = lso.prepare("runs/clf", "runs/vae20", lso.LSOOptions(optimizer="adam", lr=0.05, shell=True))
    targets, names = lso.target_matrix(["3", "0,0,0,0.5,0,0,0,0,0.5,0"], num_classes=10, n=10)
    result = lso.generate(setup, targets)          # LSOResult: images, success, steps, latents, ...

Step-wise use (an animation, a browser explorer, a notebook)::

    model = setup.model                            # or lso.compose(decoder, classifier, input_shape)
    z0 = setup.start.sample(4, torch.Generator().manual_seed(0))      # (B, d) starting latents
    for state in lso.lso_steps(model, z0, targets[:4], lso.Adam(lr=0.05), steps=100):
        state.step, state.latents, state.probs, state.error, state.images
        # (int, (B, d), (B, K), (B,), (B, C, H, W)): the state after ``step`` updates

``lso_steps`` yields step 0 (the starting point) first; the rows are
optimized together but independently, so a path is the same alone or in a
batch.  It never stops on its own unless ``steps`` is given: test
``state.error <= threshold`` to stop where ``optimize`` would.
"""
from __future__ import annotations

from .compose import LatentClassifier, LSOError, PixelSpace, compose, load_classifier, load_decoder
from .loop import DEFAULT_THRESHOLD, LSOResult, LSOStep, classifier_error, lso_steps, optimize
from .optimizers import SGD, Adam, NormalizedStep, make_optimizer
from .quality import frechet_distance
from .regularizers import Box, Chain, PriorPenalty, Shell
from .run import LSOOptions, LSOSetup, evaluate, generate, prepare, run_lso
from .starts import Encodings, Gaussian, Uniform, make_start, training_codes
from .tables import markdown, per_target_markdown
from .targets import parse_target, target_matrix

__all__ = [
    "compose", "LatentClassifier", "PixelSpace", "load_classifier", "load_decoder", "LSOError",
    "lso_steps", "LSOStep", "optimize", "LSOResult", "classifier_error", "DEFAULT_THRESHOLD",
    "NormalizedStep", "Adam", "SGD", "make_optimizer",
    "PriorPenalty", "Box", "Shell", "Chain",
    "Gaussian", "Encodings", "Uniform", "make_start", "training_codes",
    "parse_target", "target_matrix", "frechet_distance", "markdown", "per_target_markdown",
    "LSOOptions", "LSOSetup", "prepare", "generate", "evaluate", "run_lso",
]
