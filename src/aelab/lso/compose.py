"""Compose a generator with a classifier into one module ``z -> probabilities``.

The LSO paper trains an autoencoder and a classifier separately, then puts
the decoder in front of the classifier (its figure 3) so that the latent
vector is the new input layer.  :class:`LatentClassifier` is that network;
:class:`PixelSpace` is the identity "generator" that makes the same code run
the paper's baseline, simple input optimization on the classifier's pixels.
Shapes are checked once, when the two parts are composed.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .. import generation
from ..errors import AelabError, RunDirError
from ..models.family import CONDITIONAL, DECODE, capabilities_of, families, family
from ..runs import load_model, load_run


class LSOError(AelabError):
    """An LSO input (run directory, target, option) is not what LSO needs."""


def _fmt(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


class PixelSpace(nn.Module):
    """The identity generator: the optimized vector *is* the image (flattened)."""

    kind = "pixels"

    def __init__(self, image_shape: tuple[int, ...]):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim = int(torch.Size(self.image_shape).numel())

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # (B, C*H*W) -> (B, C, H, W)
        return z.reshape(len(z), *self.image_shape)


class LatentClassifier(nn.Module):
    """decoder -> classifier as one network: ``probs(z)`` and ``images(z)``.

    Both parts are frozen (``requires_grad=False``, eval mode): LSO moves the
    latent vector, never a weight.
    """

    def __init__(self, generator: nn.Module, classifier: nn.Module, latent_dim: int,
                 image_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.generator, self.classifier = generator.eval(), classifier.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self.latent_dim, self.image_shape = int(latent_dim), tuple(image_shape)
        self.num_classes = int(num_classes)

    def images(self, z: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) -> (B, C, H, W); a conditional generator decodes each row as
        its target (B, K): the class is given, the latent is optimized."""
        if CONDITIONAL not in capabilities_of(self.generator):
            return self.generator.decode(z)
        if targets is None:
            raise LSOError("a conditional decoder needs the targets to decode as")
        return self.generator.decode(z, targets.to(z.dtype))

    def logits(self, z: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:  # (B, d) -> (B, K)
        return self.classifier(self.images(z, targets))["logits"]

    def probs(self, z: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:  # (B, d) -> (B, K)
        return torch.softmax(self.logits(z, targets), dim=1)

    def forward(self, z: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return self.probs(z, targets)


def compose(decoder: nn.Module, classifier: nn.Module, classifier_shape: tuple[int, ...],
            decoder_name: str = "decoder", classifier_name: str = "classifier") -> LatentClassifier:
    """``decoder -> classifier``; the decoder's output shape must be the
    classifier's input shape (checked by decoding one latent vector)."""
    latent = int(decoder.latent_dim)  # every model that decodes says how wide its code is
    with torch.no_grad():
        x = decoder.decode(torch.zeros(1, latent), *_any_condition(decoder))  # (1, C, H, W)
        out_shape = tuple(x.shape[1:])
        if out_shape != tuple(classifier_shape):
            raise LSOError(f"{decoder_name} outputs {_fmt(out_shape)} images but {classifier_name} takes "
                           f"{_fmt(classifier_shape)} inputs; train both on the same data shape")
        num_classes = classifier(x)["logits"].shape[1]
    if CONDITIONAL in capabilities_of(decoder) and decoder.num_classes != num_classes:
        raise LSOError(f"{decoder_name} is conditioned on {decoder.num_classes} classes but {classifier_name} "
                       f"tells {num_classes}; the targets condition the decoder, so they must agree")
    return LatentClassifier(decoder, classifier, latent, out_shape, num_classes)


def _any_condition(decoder: nn.Module) -> tuple:
    """A condition to decode one trial code with (class 0), for a conditional decoder."""
    return (torch.zeros(1, dtype=torch.long),) if CONDITIONAL in capabilities_of(decoder) else ()


def load_classifier(run_dir: str | Path, role: str = "--classifier") -> tuple[nn.Module, tuple[int, ...]]:
    """A classifier run's model and input shape; any other kind of run is refused."""
    return generation.load_classifier(run_dir, role, error=LSOError)


def load_decoder(run_dir: str | Path, role: str = "--decoder") -> nn.Module:
    """The model of a run whose family can decode (its decoder is the generator)."""
    run = load_run(run_dir)
    if not family(run.config.model.kind).has(DECODE):
        raise LSOError(f"{role} {run.path}: is a '{run.config.model.kind}' run, expected a model that decodes "
                       f"a latent code (model.kind: {', '.join(_kinds_with(DECODE))})")
    _completed(run, role)
    return load_model(run.path)


def _kinds_with(capability: str) -> list[str]:
    return [f.kind for f in families() if f.has(capability)]


def _completed(run, role: str) -> None:
    if run.status != "completed":
        raise RunDirError(f"{role} {run.path}: run status is '{run.status}', expected 'completed'")
