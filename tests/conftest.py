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

def killed(work, timeout: float = 180) -> int:
    """Run ``work()`` in a forked child of this process and return its exit
    code (``-SIGKILL`` when a hook the work installed killed it).  The child
    inherits this process's imports and its one torch thread, so a kill test
    pays no interpreter start-up (seconds each) and reduces in the same order."""
    import multiprocessing as mp
    proc = mp.get_context("fork").Process(target=work, daemon=True)
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        pytest.fail(f"the child did not end within {timeout} s")
    return proc.exitcode


def sigkill_when(cls, name: str, should_die) -> None:
    """In the calling (child) process: wrap ``cls.name`` so that the process
    SIGKILLs itself as soon as ``should_die(self, result, *args)`` holds after a call."""
    import signal
    original = getattr(cls, name)

    def wrapper(self, *args):
        out = original(self, *args)
        if should_die(self, out, *args):
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    setattr(cls, name, wrapper)


def train_killed_after_rows(cfg: dict, out, rows: int) -> int:
    """Train ``cfg`` into ``out`` in a child that SIGKILLs itself right after
    its ``rows``-th history row is written (any trainer: every one writes
    history.csv through HistoryCallback); returns the child's exit code."""
    def work():
        import aelab
        from aelab.training.callbacks import HistoryCallback
        sigkill_when(HistoryCallback, "on_epoch_end", lambda _, __, trainer: len(trainer.state.history) == rows)
        aelab.train(cfg, out=out)
    return killed(work)


def train_tiny(tmp_path, name: str, model: dict, **train):
    """TINY with a 64-16-4 model section of ``model``'s kind and options
    (and ``train`` overrides), trained into ``tmp_path / name``."""
    import aelab
    cfg = copy.deepcopy(TINY)
    cfg["model"] = {"encoder": [16], "latent_dim": 4, **model}
    cfg["train"].update(train)
    return aelab.train(cfg, out=tmp_path / name)


def one_line_config_error(model: dict) -> str:
    """The ConfigError, one line, that TINY with ``model`` as its model section raises."""
    from aelab.errors import ConfigError
    from aelab.spec import load_config
    cfg = copy.deepcopy(TINY) | {"model": model}
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert "\n" not in str(e.value)
    return str(e.value)
