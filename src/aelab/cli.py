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
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
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


study_app = typer.Typer(no_args_is_help=True, help="Studies: many runs from one spec (sweeps, searches).")
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run(
    study_file: Path = typer.Argument(..., help="study spec (YAML)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="study directory (default runs/study-<name>)"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (default: a journal file in the study directory)"),
    workers: int = typer.Option(1, "--workers", "-w", help="parallel worker processes"),
    trials: Optional[int] = typer.Option(None, "--trials", help="trial budget (grid: at least the grid size)"),
) -> None:
    """Run or continue a study; writes results.csv, summary.md and figures."""
    from .studies import run_study
    with user_errors():
        result = run_study(study_file, out=out_dir, storage=storage, workers=workers, trials=trials)
        done = sum(r.state == "complete" for r in result.rows)
        out.print(f"[bold]{result.path}[/]: {done} complete, {len(result.rows) - done} failed trials")
        out.print((result.path / "summary.md").read_text(), markup=False, highlight=False)


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
