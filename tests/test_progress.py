"""Progress of long work: a study's per-trial lines and live line, the
summary that fits a terminal, the training bar, an LSO study's lines.  The
renderers are pure functions and are tested as such; no wall-clock checks."""
from __future__ import annotations

import copy
import io
import re
from types import SimpleNamespace

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from rich.console import Console
from typer.testing import CliRunner

from aelab.cli import app
from aelab.lso.progress import LSOProgress, lso_live_text, method_line, training_line
from aelab.lso.study import train_or_reuse
from aelab.progress import Reporter, clock, duration, live_row
from aelab.studies import run_study
from aelab.studies.progress import StudyWatcher, Tally, live_text, remaining, tally
from aelab.studies.results import summary_console
from aelab.training.progress import ProgressCallback, bar_status, closing_progress, losses_text


def reporter(width: int = 300) -> tuple[Reporter, io.StringIO]:
    buf = io.StringIO()
    return Reporter(Console(file=buf, width=width, force_terminal=False), live=False), buf


def lines(buf: io.StringIO) -> list[str]:
    return [line for line in buf.getvalue().splitlines() if line.strip()]


# ------------------------------------------------------------ pure renderers

def test_clock_and_duration():
    assert clock(0) == "0:00:00" and clock(72) == "0:01:12" and clock(3 * 3600 + 5) == "3:00:05"
    assert duration(0.43) == "0.4 s" and duration(42.4) == "42 s" and duration(192) == "0:03:12"
    assert duration(None) == "? s"


def test_live_text_says_counts_then_times_then_the_best():
    t = Tally(done=7, budget=24, running=2, failed=1, best=0.021349)
    assert live_text(t, "recon_mse", 72, 160) == \
        "7/24 trials  2 running  1 failed  0:01:12 elapsed, 0:02:40 left  best recon_mse 0.02135"
    start = Tally(done=0, budget=24, running=2, failed=0, best=None)
    assert live_text(start, "recon_mse", 3, None) == "0/24 trials  2 running  0:00:03 elapsed"
    end = Tally(done=24, budget=24, running=0, failed=0, best=0.5)
    assert live_text(end, "recon_mse", 200, 0) == "24/24 trials  0 running  0:03:20 elapsed  best recon_mse 0.5"


def test_remaining_is_this_sessions_pace():
    assert remaining(done=5, done_at_start=5, budget=10, elapsed=30) is None  # nothing finished yet here
    assert remaining(done=7, done_at_start=5, budget=10, elapsed=30) == pytest.approx(45)  # 15 s a trial, 3 left


def test_live_row_cuts_the_text_never_the_name_and_drops_the_bar_when_narrow():
    text = "7/24 trials  2 running  1 failed  0:01:12 elapsed, 0:02:40 left  best recon_mse 0.02135"
    for width, bar in ((130, True), (100, False), (60, False)):
        buf = io.StringIO()
        Console(file=buf, width=width).print(live_row("study optimizers", 7, 24, text))
        out = buf.getvalue().rstrip("\n")
        assert "\n" not in out and len(out) <= width and out.startswith("study optimizers ")
        assert ("━" in out) == bar
    assert out.endswith("…")


# ------------------------------------------------------ trials from storage

def _trial(state, attrs=None, values=None, lr=0.01):
    return create_trial(state=state, params={"train.lr": lr}, distributions={"train.lr": FloatDistribution(1e-4, 1.0)},
                        user_attrs=attrs or {}, values=values)


def _watcher(study, budget=4):
    rep, buf = reporter()
    ctx = SimpleNamespace(name="t", budget=budget, objectives={"recon_mse": "min"})
    return StudyWatcher(study, ctx, rep), buf


def test_each_trial_is_reported_once_and_only_when_its_fate_is_known():
    study = optuna.create_study()
    watcher, buf = _watcher(study)
    study.add_trial(_trial(TrialState.COMPLETE, {"config": "lr=0.01", "seconds": 2.0}, [0.25]))
    study.add_trial(_trial(TrialState.FAIL, {"config": "lr=1e9", "seconds": 0.4,
                                             "fail_reason": "seed 0: diverged at epoch 1"}))
    study.add_trial(_trial(TrialState.PRUNED, {"over_budget": True}))  # raced past the budget: never shown
    study.add_trial(_trial(TrialState.FAIL, {"config": "lr=0.02", "interrupted": True}))  # waits for its retry
    study.add_trial(_trial(TrialState.FAIL, {"config": "lr=0.03", "fail_reason": "worker vm:1:2 died"}))
    got = watcher.poll()
    assert got == ["[1/4] trial 0  lr=0.01  complete  recon_mse 0.25  2.0 s",
                   "[2/4] trial 1  lr=1e9  failed: seed 0: diverged at epoch 1  0.4 s"]
    assert watcher.state == Tally(done=2, budget=4, running=0, failed=1, best=0.25)
    assert watcher.poll() == []  # nothing twice
    study.enqueue_trial({"train.lr": 0.03}, user_attrs={"queued": True, "retry_of": 4})  # recover_dead's retry
    assert [line.split("  ")[:3] for line in watcher.poll()] == [["trial 4", "lr=0.03", "retried (worker vm:1:2 died)"]]
    assert [line.rsplit("  ", 1)[0] for line in watcher.poll(final=True)] == \
        ["trial 3  lr=0.02  interrupted (the next run retries it)"]
    assert lines(buf)[0].startswith("[1/4] trial 0") and len(lines(buf)) == 4


def test_a_continued_study_reports_only_its_new_trials():
    study = optuna.create_study()
    study.add_trial(_trial(TrialState.COMPLETE, {"config": "lr=0.01", "seconds": 1.0}, [0.5]))
    watcher, buf = _watcher(study, budget=2)
    with watcher:
        study.add_trial(_trial(TrialState.COMPLETE, {"config": "lr=0.1", "seconds": 1.0, "retry_of": 7}, [0.2]))
    assert lines(buf) == ["study t: 1/2 trials already finished, continuing",
                          "[2/2] trial 1 (retry of 7)  lr=0.1  complete  recon_mse 0.2  1.0 s"]
    assert tally(study.get_trials(), 2).best == 0.2 and tally(study.get_trials(), 2, "max").best == 0.5


@pytest.fixture
def failing_study(tiny) -> dict:
    """A 2 x 2 grid over the tiny digits AE: one good configuration, one that
    diverges and two whose conv2d kernel cannot fit 8x8 digits."""
    base = copy.deepcopy(tiny)
    base["train"].update(epochs=2, optimizer="sgd")
    base["model"]["output_activation"] = "linear"
    conv = {"type": "conv2d", "filters": 2, "kernel": 9}
    return {"name": "t", "base": base, "space": {"model.encoder": [[16], [conv]], "train.lr": [0.01, 1.0e9]},
            "objectives": {"recon_mse": "min"}, "repeats": 1, "strategy": "grid"}


def test_a_study_prints_one_line_per_trial_with_each_failure_reason(failing_study, tmp_path):
    rep, buf = reporter()
    result = run_study(failing_study, out=tmp_path / "s", progress=rep)
    got = lines(buf)
    assert len(got) == 4 and [re.match(r"\[(\d)/4\] trial (\d)", g).group(1) for g in got] == ["1", "2", "3", "4"]
    by_trial = {int(re.match(r"\[\d/4\] trial (\d)", g).group(1)): g for g in got}
    assert re.search(r"trial 0  encoder=\[16\], lr=0.01  complete  recon_mse \d\.\d+  [\d.]+ s$", by_trial[0])
    assert "lr=1e+09  failed: seed 0: diverged at epoch 1  " in by_trial[1]
    assert all("failed: seed 0: LayerError: model.encoder[0] (conv2d): kernel 9" in by_trial[n] for n in (2, 3))

    # the summary for a terminal fits its width; summary.md stays markdown
    for width in (60, 80, 200):
        out = io.StringIO()
        console = Console(file=out, width=width)
        for part in summary_console(result.rows, result.context, result.best, width):
            console.print(part)
        text = out.getvalue()
        assert max(map(len, text.splitlines())) <= width and "recon_mse ↓" in text
        assert "best (*): trial 0: encoder=[16], lr=0.01" in text.replace("\n", " ") or width < 80
        assert ("Not shown at this width" in text) == (width < 200)
    md = (result.path / "summary.md").read_text()
    assert "| configuration | seeds | `recon_mse` ↓ |" in md and "## Failed trials" in md


def test_study_run_writes_progress_to_stderr_and_results_to_stdout(tiny, tmp_path):
    tiny["train"]["epochs"] = 1
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "cli", "base": tiny, "space": {"model.latent_dim": [2, 3]},
                                    "objectives": {"recon_mse": "min"}, "strategy": "grid"}))
    r = CliRunner().invoke(app, ["study", "run", str(path), "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert re.search(r"^\[1/2\] trial \d  latent_dim=\d  complete  recon_mse ", r.stderr, re.M)
    assert "[1/2]" not in r.stdout and "| configuration |" in r.stdout


# --------------------------------------------------------- the training bar

def test_bar_status_reads_naturally():
    assert bar_status("epoch", 12, 40, "loss 0.0213  val 0.022", 12, 28) == \
        "epoch 12/40  loss 0.0213  val 0.022  0:00:12 elapsed, 0:00:28 left"
    assert bar_status("generation", 300, 1000, "mae 0.104", 40, None) == \
        "generation 300/1000  mae 0.104  0:00:40 elapsed"
    assert bar_status("epoch", 40, 40, "loss 0.02", 50, 0) == "epoch 40/40  loss 0.02  0:00:50 elapsed"
    assert bar_status("epoch", 12, 40, "loss 0.02", 9, 30, end="stopped early") == \
        "epoch 12/40  loss 0.02  0:00:09 elapsed, stopped early"
    assert losses_text({"train_loss": 0.021349, "val_loss": float("nan")}) == "loss 0.02135"
    assert losses_text({"train_loss": 0.5, "val_loss": 0.25}, "mae") == "mae 0.5  val 0.25"


def _trainer(method="gradient", **spec):
    from aelab.spec import TrainSpec
    budget = {"epochs": 3} if method == "gradient" else {"generations": 100, "fitness": "mae"}
    return SimpleNamespace(spec=TrainSpec(method=method, **budget, **spec), elapsed=0.0,
                           state=SimpleNamespace(epoch=0, history=[], stopped_early=False, status="running"))


def _train(cb, trainer, rows):
    cb.on_train_start(trainer)
    for epoch, row in rows:
        trainer.state.epoch = epoch
        trainer.state.history.append(row)
        cb.on_epoch_end(trainer)
    trainer.state.status = "completed"
    cb.on_train_end(trainer)


@pytest.mark.parametrize("width", [80, 120])
def test_the_bar_names_the_whole_run_and_its_unit(width):
    name = "runs/a-rather-long-run-name-20260101-120000"
    buf = io.StringIO()
    cb = ProgressCallback(name, Console(file=buf, width=width))
    _train(cb, _trainer(), [(e, {"train_loss": 0.5 / e, "val_loss": 0.6 / e}) for e in (1, 2, 3)])
    out = buf.getvalue().strip().splitlines()
    assert max(map(len, out)) <= width and "━" in out[-1]
    assert out[0] == name if width < 110 else out[0].startswith(name + " ")  # whole, above the bar if need be
    assert out[-1].endswith("epoch 3/3  loss 0.1667  val 0.2  0:00:00 elapsed")

    buf = io.StringIO()
    cb = ProgressCallback("runs/ga", Console(file=buf, width=width))
    trainer = _trainer("ga")
    _train(cb, trainer, [(50, {"train_loss": 0.1, "val_loss": 0.2, "epoch": 50})])
    assert "generation 50/100  mae 0.1  val 0.2" in buf.getvalue()


def test_the_bar_stops_and_gives_the_cursor_back_when_training_raises():
    buf = io.StringIO()
    cb = ProgressCallback("runs/x", Console(file=buf, width=100, force_terminal=True))
    trainer = _trainer()
    with pytest.raises(KeyboardInterrupt), closing_progress([object(), cb]):
        cb.on_train_start(trainer)
        raise KeyboardInterrupt
    assert cb.progress is None and buf.getvalue().endswith("\x1b[?25h")  # cursor shown again
    cb.close()  # idempotent


# ------------------------------------------------------------- LSO studies

def test_lso_lines_and_live_text():
    assert training_line("judge", "tiny-judge", "reused", 0.01, "out/runs/tiny-judge-ab") == \
        "judge tiny-judge: reused  out/runs/tiny-judge-ab"
    assert training_line("classifier", "clf", "trained", 2.14, "r/clf") == "classifier clf: trained in 2.1 s  r/clf"
    row = {"method": "paper step", "success_rate": 2 / 3, "judge_accuracy": 0.83, "fid": 45.12, "seconds": 1.2}
    assert method_line(row) == "method paper step: success 67%, judge accuracy 83%, FID 45.1  1.2 s"
    assert method_line({**row, "fid": None, "seconds": None}).endswith("judge accuracy 83%  ? s")
    assert lso_live_text(3, 4, "method pixels", 5, 69) == "3/4 steps  method pixels (0:00:05)  0:01:09 elapsed"
    assert lso_live_text(3, 4, "", 5, 69) == "3/4 steps  0:01:09 elapsed"


def test_lso_trainings_say_trained_then_reused(tiny, tmp_path):
    tiny["train"]["epochs"] = 1
    path = tmp_path / "ae.yaml"
    path.write_text(yaml.safe_dump(tiny))
    rep, buf = reporter()
    with LSOProgress("x", 2, rep) as progress:
        first = train_or_reuse(path, tmp_path / "runs", progress, "decoder")
        again = train_or_reuse(path, tmp_path / "runs", progress, "decoder")
    assert first.path == again.path
    got = lines(buf)
    assert re.fullmatch(rf"\[1/2\] decoder tiny: trained in [\d.]+ s  {re.escape(str(first.path))}", got[0])
    assert got[1] == f"[2/2] decoder tiny: reused  {first.path}"
