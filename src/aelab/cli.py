"""The ``aelab`` command line: a thin layer over :mod:`aelab.api`.

Each command parses, calls the library and prints.  A user mistake
(:class:`AelabError`) is printed as one line on stderr with exit code 2 and
no traceback.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import api
from .errors import AelabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="aelab: autoencoder experiments as data -> run directories.")
out = Console()
err = Console(stderr=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn an AelabError into one red line and exit code 2; warnings into one line each."""
    warnings.showwarning = lambda msg, *a, **k: err.print(f"[yellow]warning:[/] {msg}", highlight=False)
    try:
        yield
    except AelabError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # keep "[...]" literal
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]: resume with `aelab train --resume RUN_DIR`")
        raise typer.Exit(130) from None


@app.callback()
def _setup() -> None:
    """Show aelab's INFO messages (e.g. download progress) on stderr."""
    log = logging.getLogger("aelab")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


@app.command()
def train(
    config: Optional[Path] = typer.Argument(None, help="experiment spec (YAML or JSON)"),
    set_: List[str] = typer.Option([], "--set", help="override a field, e.g. --set train.epochs=5"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="run directory (default runs/<name>-<time>)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="finish an interrupted run"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Train a model from a spec into a run directory."""
    with user_errors():
        if config is None and resume is None:
            raise AelabError("train: give a CONFIG file, or --resume RUN_DIR")
        run = api.train(config, overrides=set_, out=out_dir, resume=resume, quiet=quiet)
        _print_metrics(run.metrics, title=f"{run.path}  [{run.status}]")


@app.command()
def evaluate(run_dir: Path = typer.Argument(..., help="a run directory")) -> None:
    """Re-compute a run's metrics, figures and report from its saved weights."""
    with user_errors():
        _print_metrics(api.evaluate(run_dir), title=str(run_dir))


@app.command()
def show(run_dir: Path = typer.Argument(..., help="a run directory"),
         as_json: bool = typer.Option(False, "--json", help="print metrics.json")) -> None:
    """Summarize a run: what was trained, how far, and its metrics."""
    with user_errors():
        run = api.show(run_dir)
        if as_json:
            typer.echo(json.dumps(run.metrics, indent=2))
            return
        c = run.config
        out.print(f"[bold]{run.path}[/]  status [bold]{run.status}[/]")
        out.print(f"model {c.model.kind}, latent {c.model.latent_dim}, data {c.data.name}, "
                  f"{c.train.optimizer} lr {c.train.lr:g}, {len(run.history)}/{c.train.epochs} epochs")
        _print_metrics(run.metrics, title="metrics")


@app.command()
def datasets() -> None:
    """List every data set: shape, size, source, and whether it is available offline."""
    with user_errors():
        table = Table("name", "shape", "size", "source", "offline")
        for d in api.datasets():
            table.add_row(d.name, d.shape_str, f"{d.size:,}" if d.size else "-", d.source,
                          "yes" if d.offline else "no")
        out.print(table)


@app.command()
def report(directory: Path = typer.Argument(..., help="a run, study or LSO output directory"),
           out_file: Optional[Path] = typer.Option(None, "--out", help="where to write (default DIR/report.html)")) -> None:
    """Write a self-contained report.html (figures inlined, works offline)."""
    from .reporting import write_html_report
    with user_errors():
        out.print(f"wrote {write_html_report(directory, out_file)}")


@app.command()
def explore(run_dir: Path = typer.Argument(..., help="an autoencoder run directory"),
            port: int = typer.Option(8765, "--port", help="TCP port"),
            host: str = typer.Option("127.0.0.1", "--host", help="address to bind (default: this machine only)"),
            classifier: Optional[Path] = typer.Option(None, "--classifier", help="a classifier run: enables latent-space optimization")) -> None:
    """Serve a local web page to explore the run's latent space."""
    from .explore import serve
    with user_errors():
        serve(run_dir, host=host, port=port, classifier=classifier)


study_app = typer.Typer(no_args_is_help=True, help="Studies: many runs from one spec (sweeps, searches).")
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run(
    study_file: Path = typer.Argument(..., help="study spec (YAML)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="study directory (default runs/study-<name>)"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (default: a journal file in the study directory)"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="parallel worker processes (local: default 1) or trials in flight (ray: default as many as the cluster's CPUs hold)"),
    trials: Optional[int] = typer.Option(None, "--trials", help="trial budget (grid: at least the grid size)"),
    executor: str = typer.Option("local", "--executor", help="local (worker processes here) or ray (one Ray task per trial)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: a local Ray instance)"),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="Ray: CPUs each trial's task reserves"),
    gpus_per_trial: float = typer.Option(0.0, "--gpus-per-trial", help="Ray: GPUs each trial's task reserves (fractions share a GPU)"),
) -> None:
    """Run or continue a study; writes results.csv, summary.md and figures."""
    from .studies import run_study
    from .studies.executors import make_executor
    with user_errors():
        runner = make_executor(executor, workers, address, cpus_per_trial, gpus_per_trial)
        result = run_study(study_file, out=out_dir, storage=storage, trials=trials, executor=runner)
        done = sum(r.state == "complete" for r in result.rows)
        out.print(f"[bold]{result.path}[/]: {done} complete, {len(result.rows) - done} failed trials")
        out.print((result.path / "summary.md").read_text(), markup=False, highlight=False)


@app.command()
def lso(
    classifier: Path = typer.Option(..., "--classifier", help="classifier run directory (optimized against)"),
    target: List[str] = typer.Option(..., "--target", help="class index (3) or probabilities (0,0,0,.5,0,0,0,0,.5,0); repeatable"),
    decoder: Optional[Path] = typer.Option(None, "--decoder", help="AE/VAE run directory (pixel space: scores realism)"),
    n: int = typer.Option(10, "--n", help="samples per target"),
    out_dir: Path = typer.Option(Path("runs/lso"), "--out", help="output folder"),
    space: str = typer.Option("latent", "--space", help="latent | pixels (the paper's input-optimization baseline)"),
    optimizer: str = typer.Option("normalized", "--optimizer", help="normalized (the paper's Algorithm 3) | adam | sgd"),
    lr: Optional[float] = typer.Option(None, "--lr", help="normalized: rate r in C = -r*E (0.5); adam/sgd: step size"),
    threshold: float = typer.Option(0.001, "--threshold", help="success: mean squared error over classes <= this"),
    steps: int = typer.Option(200, "--steps", help="updates per restart"),
    restarts: int = typer.Option(20, "--restarts", help="starts per sample at most"),
    parallel: int = typer.Option(5, "--parallel", help="restarts per sample optimized at once"),
    start: Optional[str] = typer.Option(None, "--start", help="prior | gaussian | encodings | uniform"),
    prior_penalty: float = typer.Option(0.0, "--prior-penalty", help="weight of the prior penalty"),
    box: Optional[float] = typer.Option(None, "--box", help="clamp to the training codes' [q, 100-q] percentiles"),
    shell: bool = typer.Option(False, "--shell", help="project onto the prior's typical shell"),
    max_step: Optional[float] = typer.Option(None, "--max-step", help="normalized: cap on the step length"),
    seed: int = typer.Option(0, "--seed"),
    evaluate_: bool = typer.Option(False, "--evaluate", help="quality measures (needs --judge)"),
    judge: Optional[Path] = typer.Option(None, "--judge", help="independent classifier run directory"),
) -> None:
    """Latent-space optimization: generate samples the classifier calls the target."""
    from . import lso as L
    with user_errors():
        opts = L.LSOOptions(space=space, optimizer=optimizer, lr=lr, steps=steps, restarts=restarts,
                            parallel=parallel, threshold=threshold, start=start, prior_penalty=prior_penalty,
                            box=box, shell=shell, max_step=max_step, seed=seed)
        s = L.run_lso(classifier, target, decoder, n, out_dir, opts, judge, evaluate_)
        scores = {k: v for k, v in s.get("evaluation", {}).items() if k != "table"}
        _print_metrics({k: v for k, v in s.items() if isinstance(v, (int, float))} | scores, title=str(out_dir))
        if "evaluation" in s:
            out.print(L.per_target_markdown(s["evaluation"]["table"]), markup=False, highlight=False)


@app.command("lso-study")
def lso_study(study_file: Path = typer.Argument(..., help="LSO experiment file (kind: lso)"),
              out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default runs/lso-<name>)")) -> None:
    """Run an LSO experiment file: train or reuse its runs, run every method, write table + grid."""
    from .lso.study import run_lso_study
    with user_errors():
        result = run_lso_study(study_file, out_dir)
        out.print((Path(result["path"]) / "table.md").read_text(), markup=False, highlight=False)


def _print_metrics(metrics: dict, title: str) -> None:
    table = Table("metric", "value", title=title, title_justify="left")
    for k, v in metrics.items():
        text = f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else ("—" if v is None else str(v))
        table.add_row(k, text)
    out.print(table)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="aelab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
