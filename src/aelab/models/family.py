"""Model families as plug-ins: one registry, keyed by ``model.kind``.

A family is a folder ``aelab/models/families/<name>/`` with two files:

- ``config.py``: ``SPEC``, its pydantic spec (``kind: Literal["<kind>"]``
  plus only its own fields; :mod:`aelab.spec` builds the ``model`` section
  as the union of every family's spec, discriminated on ``kind``).  It
  imports no torch, so a config is validated before anything heavy loads.
- ``family.py``: ``FAMILY``, a :class:`Family` -- how the model is built,
  what it minimizes, what it measures and draws, and what it can do.

Consumers ask a family (or a built model, whose ``capabilities`` are the
family's) what it can do, never for its name:

======================  ==================================================
``embed``               ``model.embed(x[, y])``: codes for latent metrics,
                        scatter plots, the explorer's plane
``decode``              ``model.decode(z[, y])`` and ``model.latent_dim``:
                        LSO, samples, the manifold, the explorer
``generative``          ``model.sample(n[, y], generator)`` from a standard
                        normal prior (LSO's default start)
``conditional``         ``embed``/``decode``/``forward`` take one-hot labels
``classify``            ``model(x)["logits"]``, ``predict_proba``
======================  ==================================================

Other packages can add families through the entry-point group
``aelab.families`` (a module defining ``SPEC`` and ``FAMILY``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..plugins import Registry

if TYPE_CHECKING:  # torch is imported by the families themselves, when used
    import torch

EMBED, DECODE, GENERATIVE, CONDITIONAL, CLASSIFY = "embed", "decode", "generative", "conditional", "classify"
CAPABILITIES = (EMBED, DECODE, GENERATIVE, CONDITIONAL, CLASSIFY)
# What metrics.json holds for every family that can generate (aelab.generation):
# pixel-space measures always, the judge's with eval.judge (study objectives can name them).
GENERATION_METRICS = ("diversity", "real_diversity", "nn_distance")
JUDGED_METRICS = ("fid", "fid_real_floor", "precision", "recall", "classes_covered", "min_class_share",
                  "class_entropy", "judge_accuracy", "judge_accuracy_min")
# What metrics.json holds for every family that can embed, on a data set that carries its
# ground-truth factors (data.name: shapes; aelab.disentanglement, aelab.evaluation.factor_metrics).
DISENTANGLEMENT_METRICS = ("mig", "factorvae_score", "dci_disentanglement", "dci_completeness",
                           "dci_informativeness")
_FOLDER = Path(__file__).parent / "families"
_PACKAGE = f"{__package__}.families"


class Family:
    """What a model family declares.  Subclasses set the class attributes
    and implement :meth:`build`, :meth:`objective` and :meth:`metrics`;
    :meth:`figures` has a default (the one-line description of what was
    built is the spec's own ``describe``, so ``aelab show`` needs no torch)."""

    kind: str = ""
    description: str = ""                    # one line, for ``aelab models``
    capabilities: frozenset[str] = frozenset()
    metric_names: tuple[str, ...] = ()       # keys its metrics.json may hold (study objectives)
    needs_labels: bool = False               # conditional families and classifiers
    methods: tuple[str, ...] = ("gradient",)  # the train.methods that can train it; the first is its default
    example: dict = {"encoder": [16]}        # a small model section of this kind (contract suites, docs)
    # The fused trainer's objective that equals this family's own (``reconstruct``,
    # ``variational``, ``classify``: aelab.training.fused.losses), or None: its
    # runs train one by one.  Read only from the class that declares it (see fused_objective).
    fuses_as: str | None = None

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def fused_objective(self) -> str | None:
        """:attr:`fuses_as` as this very class declares it -- never inherited,
        since a subclass changes the objective more often than not (a
        denoising autoencoder is an autoencoder with another loss)."""
        return type(self).__dict__.get("fuses_as")

    def build(self, spec, input_shape: tuple[int, int, int], num_classes: int | None) -> "torch.nn.Module":
        """The untrained module for inputs of ``input_shape`` (C, H, W); a
        layer that does not fit raises ModelSpecError naming it."""
        raise NotImplementedError

    def objective(self, spec, train):
        """``f(model, x, y, epoch) -> (loss, parts)`` for the gradient trainer."""
        raise NotImplementedError

    def metrics(self, model, cfg, data, device) -> dict[str, Any]:
        """Test-split metrics of a trained model (metrics.json)."""
        raise NotImplementedError

    def figures(self, folder: Path, model, data, device, seed: int) -> list[Path]:
        """The family's own figures (loss curves are drawn for every run)."""
        return []

    def resolved(self, spec, data):
        """``spec`` with what the family reads from the training data filled in
        (the run records it in config.yaml); by default ``spec`` itself."""
        return spec

    def game(self, spec, train):
        """The :class:`~aelab.training.methods.adversarial.games.Game` that
        ``train.method: adversarial`` plays with this family's model: which
        parameters are the generator's and the discriminator's, and what each
        minimizes.  Only families whose ``methods`` include it define one."""
        raise NotImplementedError(f"model.kind {self.kind} is not trained adversarially")


# --------------------------------------------------------------- registry


REGISTRY = Registry(_PACKAGE, _FOLDER, "kind", "aelab.families", "family", "FAMILY", what="model.kind")


def kinds() -> list[str]:
    """Every registered ``model.kind``, sorted."""
    return REGISTRY.keys()


def spec_classes() -> dict[str, type]:
    """kind -> the family's spec class (light: no torch)."""
    return REGISTRY.specs()


def family(kind: str) -> Family:
    """The family registered as ``kind`` (imports its implementation)."""
    return REGISTRY.implementation(kind)


def families() -> list[Family]:
    """Every registered family, by kind."""
    return [family(k) for k in kinds()]


def capabilities_of(model) -> frozenset[str]:
    """A built module's capabilities (its family's)."""
    caps = getattr(model, "capabilities", None)
    if caps is not None:
        return caps
    kind = getattr(model, "kind", None)
    return family(kind).capabilities if kind in REGISTRY.modules else frozenset()


def conditioned(model, y) -> tuple:
    """The extra arguments a call of ``model`` takes: ``(y,)`` for a
    conditional model, none otherwise (``model(x, *conditioned(model, y))``)."""
    return (y,) if CONDITIONAL in capabilities_of(model) else ()
