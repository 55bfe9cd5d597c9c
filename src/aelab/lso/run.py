"""``aelab lso`` as one function: load the runs, compose, optimize, evaluate, write.

:func:`prepare` turns run directories into an :class:`LSOSetup` (composed
model, starting distribution, regularizer, data); :func:`generate` runs the
batched loop on it; :func:`run_lso` does both and writes the output folder.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .. import interrupts, threads
from ..data import Dataset, load_dataset
from ..generation import PR_K
from ..models.family import EMBED, GENERATIVE, capabilities_of
from ..outdir import check_dir, writing
from ..runs import default_run_dir, load_run
from ..yardsticks import precision_recall
from . import outputs, quality
from .compose import LatentClassifier, LSOError, PixelSpace, compose, load_classifier, load_decoder
from .loop import DEFAULT_THRESHOLD, LSOResult, optimize
from .optimizers import make_optimizer
from .regularizers import Box, Chain, PriorPenalty, Shell
from .starts import Gaussian, make_start, training_codes
from .targets import one_hot_classes, target_matrix

SPACES = ("latent", "pixels")


@dataclass
class LSOOptions:
    """How to optimize.  ``start: None`` picks the prior for a VAE, the fitted
    Gaussian for an AE and uniform noise in pixel space; ``lr`` is the
    normalized step's rate (``C = -lr * E``) or Adam's / SGD's step size.
    ``steps: 0`` optimizes nothing: the start points themselves are decoded
    and scored (a generator's plain samples, as a baseline row)."""

    space: str = "latent"
    optimizer: str = "normalized"
    lr: float | None = None
    steps: int = 200
    restarts: int = 20
    parallel: int = 5
    threshold: float = DEFAULT_THRESHOLD
    start: str | None = None
    prior_penalty: float = 0.0
    box: float | None = None        # percentile q: clamp to [q, 100 - q] of the training codes
    shell: bool = False
    max_step: float | None = None
    seed: int = 0
    threads: int | None = None      # torch threads while optimizing (None: $AELAB_THREADS, else 1); see generate()

    def check(self) -> "LSOOptions":
        if self.space not in SPACES:
            raise LSOError(f"--space {self.space}: expected one of {', '.join(SPACES)}")
        for name, least in (("steps", 0), ("restarts", 1), ("parallel", 1)):
            if getattr(self, name) < least:
                raise LSOError(f"--{name} {getattr(self, name)}: expected at least {least}")
        if not self.threshold > 0:
            raise LSOError(f"--threshold {self.threshold}: expected a positive error")
        if self.threads is not None and self.threads < 1:
            raise LSOError(f"threads {self.threads}: expected at least 1 (or None)")
        if self.box is not None and not 0 <= self.box < 50:
            raise LSOError(f"--box {self.box}: expected a percentile in [0, 50)")
        return self


@dataclass
class LSOSetup:
    """Everything the loop and the evaluation need, built once."""

    model: LatentClassifier
    start: object
    regularizer: Chain
    data: Dataset                     # the classifier's data (real train / test images)
    autoencoder: torch.nn.Module | None
    options: LSOOptions
    sources: dict = field(default_factory=dict)

    def make_optimizer(self):
        o = self.options
        extra = {"max_step": o.max_step} if o.optimizer == "normalized" and o.max_step else {}
        return make_optimizer(o.optimizer, o.lr, **extra)


def prepare(classifier: str | Path, decoder: str | Path | None = None,
            options: LSOOptions | None = None) -> LSOSetup:
    """Load and compose the runs; fit the starting distribution and regularizers."""
    o = (options or LSOOptions()).check()
    clf, shape = load_classifier(classifier)
    data = load_dataset(load_run(classifier).config.data)
    ae = load_decoder(decoder) if decoder is not None else None
    if o.space == "latent":
        if ae is None:
            raise LSOError("--decoder: required for latent-space optimization (or use --space pixels)")
        model = compose(ae, clf, shape, f"--decoder {decoder}", f"--classifier {classifier}")
        ae_data = load_dataset(load_run(decoder).config.data)
        caps = capabilities_of(ae)
        codes = training_codes(ae, ae_data.x_train, y=ae_data.y_train) if EMBED in caps else None
        generative = GENERATIVE in caps  # a prior to start from and to project on
        gauss = Gaussian.standard(model.latent_dim) if generative else Gaussian.fit(codes)
        default_start = "prior" if generative else "gaussian"
    else:
        model = compose(PixelSpace(shape), clf, shape, "--space pixels", f"--classifier {classifier}")
        codes = torch.as_tensor(data.x_train.reshape(len(data.x_train), -1))
        gauss, default_start = Gaussian.fit(codes), "uniform"
    start = make_start(o.start or default_start, model.latent_dim, codes, data.value_range)
    if o.box is not None and codes is None:
        raise LSOError(f"--box: needs the training codes of an encoder; --decoder {decoder} only decodes")
    regs = ([PriorPenalty(gauss, o.prior_penalty)] if o.prior_penalty > 0 else []) + \
        ([Box.from_codes(codes, o.box)] if o.box is not None else []) + ([Shell(gauss)] if o.shell else [])
    o.start = o.start or default_start
    return LSOSetup(model, start, Chain(regs), data, ae, o,
                    {"classifier": str(classifier), "decoder": None if decoder is None else str(decoder)})


def generate(setup: LSOSetup, targets: np.ndarray) -> LSOResult:
    """Optimize one sample per row of ``targets`` (n, K) in one batch.

    Runs with ``options.threads`` torch threads (default 1): the loop is
    hundreds of small operations, and on a 2-core machine with another busy
    process a second thread made it up to 50x slower (benchmarks/lso_speed.py,
    docs/benchmarks.md)."""
    o = setup.options
    with threads.using(threads.resolve(o.threads, fallback=1)):
        t0 = time.perf_counter()
        result = optimize(setup.model, targets, setup.start, setup.make_optimizer(), setup.regularizer,
                          threshold=o.threshold, steps=o.steps, restarts=o.restarts, parallel=o.parallel,
                          seed=o.seed)
        result.extra["seconds"] = time.perf_counter() - t0
    return result


def evaluate(setup: LSOSetup, result: LSOResult, judge: str | Path, seed: int = 0) -> dict:
    """Per-target table and the Frechet distances of ``result`` (see :mod:`.quality`)."""
    judge_model, judge_shape = load_classifier(judge, role="--judge")
    if tuple(judge_shape) != tuple(setup.model.image_shape):
        raise LSOError(f"--judge {judge}: takes {'x'.join(map(str, judge_shape))} inputs but the samples are "
                       f"{'x'.join(map(str, setup.model.image_shape))}")
    m = quality.per_sample(result.images, result.targets, judge_model, setup.data.x_train, setup.autoencoder)
    table = quality.per_target_table(result.images, result.targets, result.success, result.steps, m)
    test_feats = quality.judge_outputs(judge_model, setup.data.x_test)[1]
    train_feats = quality.judge_outputs(judge_model, setup.data.x_train)[1]
    return {"table": table, **quality.fid_pair(m["judge_features"], test_feats, train_feats, seed,
                                               one_hot_classes(result.targets), setup.data.y_train),
            **precision_recall(test_feats, m["judge_features"], k=PR_K)}


def summary_of(setup: LSOSetup, result: LSOResult, names: Sequence[str]) -> dict:
    return {"options": asdict(setup.options), "sources": setup.sources, "targets": list(names),
            "samples": int(len(result.success)), "success_rate": result.success_rate,
            "success_at_0.001": float((result.error <= DEFAULT_THRESHOLD).mean()),
            "restart_success_rate": result.restart_success_rate,
            "mean_steps_to_success": float(result.steps[result.success].mean()) if result.success.any() else None,
            "mean_restarts": float(result.restarts.mean()), "mean_total_steps": float(result.total_steps.mean()),
            "seconds": result.extra.get("seconds")}


def run_lso(classifier, targets: Sequence, decoder=None, n: int = 10, out: str | Path | None = None,
            options: LSOOptions | None = None, judge=None, evaluate_samples: bool = False) -> dict:
    """``aelab lso``: generate ``n`` samples per target and write them to
    ``out`` (default a fresh ``runs/lso-<time>``; a folder that already holds
    LSO output is refused, never overwritten).  Returns the summary, with
    the output folder under ``path``."""
    if evaluate_samples and judge is None:
        raise LSOError("--evaluate: needs --judge RUN_DIR (a second classifier, e.g. configs/mnist14-judge.yaml)")
    out = check_new_output(Path(out) if out is not None else default_run_dir("lso"))
    setup = prepare(classifier, decoder, options)
    t, names = target_matrix(targets, setup.model.num_classes, n)
    with writing(out, keep_on_interrupt=lambda: False), interrupts.hint(f"nothing was kept in {out}; run the command again"):
        check_new_output(out)  # another command may have written here meanwhile
        result = generate(setup, t)
        summary = summary_of(setup, result, names)
        if evaluate_samples:
            summary["evaluation"] = evaluate(setup, result, judge, setup.options.seed)
        write_outputs(out, setup, result, names, summary)
    return summary | {"path": str(out)}


def check_new_output(out: Path) -> Path:
    """``out`` is a writable place without LSO output in it."""
    check_dir(out)
    if any((out / name).exists() for name in (outputs.SAMPLES, outputs.SUMMARY)):
        raise LSOError(f"--out {out}: already holds LSO output; choose another --out")
    return out


def write_outputs(out: Path, setup: LSOSetup, result: LSOResult, names: Sequence[str], summary: dict) -> None:
    label = setup.options.space if setup.options.space == "pixels" else setup.options.optimizer
    outputs.save_samples(out / outputs.SAMPLES, result)
    rows = outputs.grid_rows(label, result, names, per_target=min(4, len(result.success) // len(names)))
    outputs.save_grid(out / outputs.GRID, rows, names, "LSO samples (successful first)")
    first = [int(np.flatnonzero(np.all(result.targets == t, axis=1))[0])
             for t in outputs.distinct_targets(result.targets)]
    frames, marks = outputs.walk_data(setup.model, result.start_latents[first], result.targets[first],
                                      result.steps[first], setup.make_optimizer, setup.regularizer)
    outputs.save_walk(out / outputs.WALK, frames, marks, names, "Optimization path (first sample per target)")
    outputs.save_summary(out / outputs.SUMMARY, summary)
