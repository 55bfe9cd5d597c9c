"""Latent-space optimization for the explorer, step by step.

Built with :func:`aelab.lso.prepare` (the same composition of decoder and
classifier, optimizer and regularizers as ``aelab lso``) and run with its
step-wise API, :func:`aelab.lso.lso_steps`, from the page's current code
towards a chosen target class.  Every step's code, target probability and
decoded image is returned so the page can replay the path through the plane.

The default options are the paper's normalized step with the codes clamped
to the 1st-99th percentile box of the training codes (``box=1``): without a
bound the normalized step can leave the region the decoder was trained on
by orders of magnitude, which the plane cannot show.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import lso
from .session import Session, to_uint8
from .validation import MISSING, RequestError, check_keys, parse_code, parse_int

MAX_STEPS = 300
DEFAULT_STEPS = 100
FIELDS = ("target", "start", "steps")
DEFAULT_OPTIONS = lso.LSOOptions(box=1.0)


class LSOHandler:
    """Answers ``POST /api/lso`` ``{"target": k, "start": code, "steps": n}``
    (``steps`` optional, 1..MAX_STEPS, DEFAULT_STEPS when absent; any other key is refused)."""

    def __init__(self, session: Session, classifier_dir: str | Path, run_dir: str | Path,
                 options: lso.LSOOptions | None = None):
        self.session = session
        self.setup = lso.prepare(classifier_dir, run_dir, options or DEFAULT_OPTIONS)
        self.classes = list(range(self.setup.model.num_classes))

    def __call__(self, body: dict) -> dict:
        check_keys(body, FIELDS)
        target = parse_int(body, "target", self.classes[0], self.classes[-1])
        start = parse_code(body.get("start", MISSING), self.session.latent_dim, "start")
        steps = parse_int(body, "steps", 1, MAX_STEPS) if "steps" in body else DEFAULT_STEPS
        return self.run(target, start, steps)

    def run(self, target: int, start: np.ndarray, steps: int) -> dict:
        """Optimize from ``start`` until the target is reached or after ``steps``
        updates.  The path ends before any non-finite state (a diverged model:
        JSON cannot carry it, the page cannot draw it); a 422 names ``start``
        when even the start is one."""
        s, threshold = self.setup, self.setup.options.threshold
        onehot = torch.zeros(1, s.model.num_classes)
        onehot[0, target] = 1.0
        path = []
        with self.session.lock:
            for state in lso.lso_steps(s.model, torch.as_tensor(start[None]), onehot, s.make_optimizer(),
                                       s.regularizer, steps=steps):
                if not is_finite(state):
                    break
                path.append(state)
                if float(state.error[0]) <= threshold:
                    break
        if not path:
            raise RequestError("start: the model gives non-finite values at this code")
        images = to_uint8(torch.cat([p.images for p in path]).numpy(), self.session.value_range)
        return {"shape": list(images.shape[1:]), "success": float(path[-1].error[0]) <= threshold,
                "steps": [{"step": p.step, "code": p.latents[0].tolist(), "prob": float(p.probs[0, target]),
                           "error": float(p.error[0]), "image": images[i].ravel().tolist()}
                          for i, p in enumerate(path)]}


def is_finite(state: lso.LSOStep) -> bool:
    """Whether the numbers sent for a step (code, probabilities, error) are all finite."""
    return all(bool(torch.isfinite(t).all()) for t in (state.latents, state.probs, state.error))
