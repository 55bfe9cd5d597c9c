"""Shared fixtures: a tiny, fast experiment on the embedded digits data."""
from __future__ import annotations

import copy
import os

import pytest
import torch

torch.set_num_threads(1)  # small models: threads only add noise on 2 cores
os.environ.setdefault("AELAB_THREADS", "1")  # every run, in this process and in the CLI subprocesses tests start

TINY = {
    "name": "tiny",
    "data": {"name": "digits", "normalize": "unit", "test_size": 0.25, "seed": 0},
    "model": {"kind": "ae", "encoder": [16], "latent_dim": 2, "output_activation": "sigmoid"},
    "train": {"optimizer": "adam", "lr": 0.01, "epochs": 4, "batch_size": 64, "seed": 0},
    "eval": {"max_samples": 200, "figures": False},
}


def one_line_error(result) -> str:
    """The single stderr line of a CLI call that failed on bad input (exit 2,
    no traceback) -- the project's rule for bad input."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


@pytest.fixture
def tiny() -> dict:
    """A fresh copy of the tiny config (digits, 64-16-2 AE, 4 epochs)."""
    return copy.deepcopy(TINY)


def evolving(cfg: dict, method: str = "ga", **fields) -> dict:
    """``cfg`` trained by ``method`` (ga or es) instead: its train section
    holds only what that method has (a GA has no optimizer or epochs), the
    loss and seed kept."""
    keep = {k: cfg["train"][k] for k in ("loss", "seed") if k in cfg["train"]}
    cfg["train"] = {"method": method, **keep, **fields}
    return cfg
