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


# A budget of about a second per training method on TINY's data (contract suites).
TRAIN_BUDGET = {"gradient": {"epochs": 4, "optimizer": "adam", "lr": 0.01, "batch_size": 64},
                "ga": {"generations": 40, "population": 8, "log_every": 5},
                "es": {"generations": 40, "population": 8, "log_every": 5, "lr": 0.05},
                "adversarial": {"epochs": 4, "batch_size": 32, "lr_g": 1e-3, "lr_d": 1e-3}}

# ``python -c KILL_AFTER_ROWS CONFIG_JSON OUT N``: train, and SIGKILL the
# process right after its N-th history row is written (any trainer: every
# one writes history.csv through HistoryCallback).
KILL_AFTER_ROWS = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)  # as in the test process: same reduction order, same bits
import aelab.training.callbacks as cb
original = cb.HistoryCallback.on_epoch_end
def on_epoch_end(self, trainer):
    original(self, trainer)
    if len(trainer.state.history) == int(sys.argv[3]):  # past a checkpoint, before the next
        os.kill(os.getpid(), signal.SIGKILL)
cb.HistoryCallback.on_epoch_end = on_epoch_end
import aelab
aelab.train(json.loads(sys.argv[1]), out=sys.argv[2])
"""
