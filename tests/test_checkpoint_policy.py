"""The one checkpoint policy of every trainer: every N epochs (generations) or
every S seconds, whichever is set; always at the end; never twice for the
same state.  (Resume after SIGKILL under each policy: tests/test_training.py.)"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import aelab
from aelab.spec import CHECKPOINT_SECONDS, TrainSpec
from aelab.training import callbacks
from aelab.training.checkpoint import CheckpointPolicy, read_checkpoint


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_policy(policy: CheckpointPolicy, clock: Clock, epochs: int, seconds_per_epoch: float,
               start: int = 0) -> list[int]:
    """The epochs after which ``policy`` checkpoints (as the callback asks it)."""
    policy.start(start)
    saved = []
    for done in range(start + 1, epochs + 1):
        clock.now += seconds_per_epoch
        if policy.due(done):
            saved.append(done)
            policy.saved(done)
    return saved


def test_every_n_epochs_counts_from_the_last_checkpoint():
    clock = Clock()
    assert run_policy(CheckpointPolicy(every=3, clock=clock), clock, 10, 1.0) == [3, 6, 9]
    assert run_policy(CheckpointPolicy(every=3, clock=clock), clock, 10, 1.0, start=4) == [7, 10]


def test_every_s_seconds_after_a_first_checkpoint():
    clock = Clock()
    assert run_policy(CheckpointPolicy(seconds=10, clock=clock), clock, 12, 4.0) == [1, 4, 7, 10]
    assert run_policy(CheckpointPolicy(seconds=0, clock=clock), clock, 4, 0.0) == [1, 2, 3, 4]
    # a resumed run starts from the checkpoint it was restored from: nothing is due at once
    assert run_policy(CheckpointPolicy(seconds=10, clock=clock), clock, 8, 4.0, start=5) == [8]


def test_both_set_whichever_comes_first_neither_only_at_the_end():
    clock = Clock()
    assert run_policy(CheckpointPolicy(every=4, seconds=10, clock=clock), clock, 12, 3.0) == [1, 5, 9]
    assert run_policy(CheckpointPolicy(every=2, seconds=5, clock=clock), clock, 6, 1.0) == [1, 3, 5]
    assert run_policy(CheckpointPolicy(every=10, seconds=5, clock=clock), clock, 8, 2.0) == [1, 4, 7]
    assert run_policy(CheckpointPolicy(clock=clock), clock, 6, 100.0) == []


def test_spec_default_and_whichever_is_set():
    assert (TrainSpec().checkpoint_every, TrainSpec().checkpoint_seconds) == (None, CHECKPOINT_SECONDS)
    assert TrainSpec(checkpoint_every=5).checkpoint_seconds is None
    both = TrainSpec(checkpoint_every=5, checkpoint_seconds=2)
    assert (both.checkpoint_every, both.checkpoint_seconds) == (5, 2.0)
    resolved = TrainSpec.model_validate(TrainSpec().model_dump())  # config.yaml round trip
    assert resolved.checkpoint_seconds == CHECKPOINT_SECONDS
    with pytest.raises(ValueError):
        TrainSpec(checkpoint_every=0)
    with pytest.raises(ValueError):
        TrainSpec(checkpoint_seconds=-1)


def trainer(epochs: int, method: str = "gradient", status: str = "running"):
    spec = TrainSpec(method=method, **({"epochs": epochs} if method == "gradient" else {"generations": epochs}))
    return SimpleNamespace(spec=spec, state=SimpleNamespace(epoch=0, status=status))


@pytest.mark.parametrize("cls", [callbacks.CheckpointCallback, callbacks.StateCheckpointCallback])
def test_the_last_epoch_is_written_once_by_on_train_end(cls, tmp_path, monkeypatch):
    writes = []
    monkeypatch.setattr(cls, "save", lambda self, t: writes.append(t.state.epoch))
    cb, t = cls(tmp_path / "c", every=1), trainer(4, "gradient" if cls is callbacks.CheckpointCallback else "ga")
    cb.on_train_start(t)
    for e in range(1, 5):
        t.state.epoch = e
        cb.on_epoch_end(t)
    cb.on_train_end(t)
    assert writes == [1, 2, 3, 4]


def test_an_early_stop_is_written_once(tmp_path, monkeypatch):
    writes = []
    monkeypatch.setattr(callbacks.CheckpointCallback, "save", lambda self, t: writes.append(t.state.epoch))
    cb, t = callbacks.CheckpointCallback(tmp_path / "c", seconds=0), trainer(10)
    cb.on_train_start(t)
    t.state.epoch = 1
    cb.on_epoch_end(t)
    t.state.epoch, t.state.status = 2, "completed"  # early stopping decided in epoch 2
    cb.on_epoch_end(t)
    cb.on_train_end(t)
    assert writes == [1, 2]


def test_a_run_checkpoints_its_first_epoch_and_its_end(tiny, tmp_path, monkeypatch):
    from aelab.training import checkpoint
    epochs = []
    original = checkpoint.save_checkpoint
    monkeypatch.setattr(callbacks, "save_checkpoint",
                        lambda path, t: (epochs.append(t.state.epoch), original(path, t)))
    tiny["train"].update(epochs=6, checkpoint_seconds=3600)
    run = aelab.train(tiny, out=tmp_path / "r")
    assert epochs == [1, 6]
    meta = read_checkpoint(run.path / "checkpoint.safetensors")[1]
    assert (meta["epoch"], meta["status"]) == (6, "completed")


def test_only_files_without_a_second_copy_are_flushed_to_disk(tmp_path, monkeypatch):
    """history.csv (every epoch) and figures skip the fsync; checkpoints and
    the one-off run files keep it.  (The rename makes every write whole
    against SIGKILL either way: tests/test_training.py.)"""
    import torch
    from aelab import atomic
    from aelab.training.checkpoint import save_tensors_and_state
    synced = []
    monkeypatch.setattr(atomic.os, "fsync", synced.append)
    history = callbacks.HistoryCallback(tmp_path / "history.csv")
    history.on_epoch_end(SimpleNamespace(state=SimpleNamespace(history=[{"epoch": 1, "train_loss": 0.5}])))
    assert synced == [] and (tmp_path / "history.csv").read_text().startswith("epoch,train_loss")
    save_tensors_and_state(tmp_path / "ck.safetensors", {"w": torch.ones(3)}, {"epoch": 1})
    assert len(synced) == 1
    atomic.write_text(tmp_path / "metrics.json", "{}")
    assert len(synced) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors", "history.csv", "metrics.json"]
