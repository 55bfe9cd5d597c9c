"""The ``aelab`` command line: a thin layer over :mod:`aelab.api`.

Each command parses, calls the library and prints.  A user mistake
(:class:`AelabError`), a file-system or memory fault, and an interruption
are each printed as one line on stderr with a non-zero exit code and no
traceback.  The library is imported inside the commands, so ``--help``,
``datasets``, ``show`` and a config mistake answer without loading torch.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sys
import warnings
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import interrupts
from .errors import AelabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="aelab: autoencoder experiments as data -> run directories.")
out = Console()
err = Console(stderr=True)
_ALLOC = re.compile(r"(?:tried to allocate|Tried to allocate|allocate) ([\d.]+ ?[KMGTP]?i?B|\d+ bytes)")


def fault_line(e: BaseException) -> str | None:
    """One line for a fault that is not a bug -- the file system refused, the
    memory ran out -- or ``None`` for anything else."""
    if isinstance(e, OSError) and e.errno is not None:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or type(e).__name__}"
    text = " ".join(str(e).split())
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and
                                      ("can't allocate memory" in text or "out of memory" in text.lower())):
        size = _ALLOC.search(text)
        return f"out of memory: {'tried to allocate ' + size.group(1) if size else text[:160]}"
    return None


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn an AelabError or a fault into one red line and exit code 2,
    an interruption into one line and 130/143; warnings into one line each."""
    warnings.showwarning = lambda msg, *a, **k: err.print(f"[yellow]warning:[/] {escape(str(msg))}",
                                                          highlight=False, soft_wrap=True)
    try:
        yield
    except AelabError as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt as e:
        raise typer.Exit(interrupts.report(e)) from None
    except Exception as e:
        if interrupts.received() is not None:  # an import that swallowed the KeyboardInterrupt failed later
            raise typer.Exit(interrupts.report()) from None
        line = fault_line(e)
        if line is None:
            raise
        _fail(line, 2)


def _fail(line: str, code: int) -> None:
    err.print(f"[red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)  # keep "[...]" literal
    raise typer.Exit(code) from None


@app.callback()
def _setup(threads: Optional[str] = typer.Option(
        None, "--threads", help="CPU threads for torch in every command: N or auto (above a config's "
        "train.threads and $AELAB_THREADS)")) -> None:
    """Show aelab's INFO messages (e.g. download progress) on stderr; take --threads."""
    if threads is not None:
        from . import threads as T
        with user_errors():
            T.force(threads)
    log = logging.getLogger("aelab")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _quiet_logs() -> None:
    """--quiet: only warnings and errors, from aelab and from the trackers
    (MLflow sets its own logger's level when it is imported, from
    $MLFLOW_LOGGING_LEVEL)."""
    import os
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("aelab", "mlflow", "alembic", "tensorboard"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.command()
def train(
    config: Optional[Path] = typer.Argument(None, help="experiment spec (YAML or JSON), or a shipped config's name (aelab configs)"),
    set_: List[str] = typer.Option([], "--set", help="override a field, e.g. --set train.epochs=5"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="run directory (default runs/<name>-<time>)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="finish an interrupted run"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar, no INFO lines"),
    repeats: int = typer.Option(1, "--repeats", help="train N seeds (train.seed onwards) fused, "
                                "each a run under OUT/seed-<seed>/; prints mean ± std"),
) -> None:
    """Train a model from a spec into a run directory."""
    with user_errors():
        if config is None and resume is None:
            raise AelabError("train: give a CONFIG file, or --resume RUN_DIR")
        if quiet:
            _quiet_logs()
        from . import api
        if repeats != 1:
            if resume is not None:
                raise AelabError("--repeats: trains new runs; drop --resume (each seed's run is its own directory)")
            _print_repeats(api.train_repeats(config, repeats, overrides=set_, out=out_dir))
            return
        run = api.train(config, overrides=set_, out=out_dir, resume=resume, quiet=quiet)
        _print_path(run.path, run.status)
        _print_metrics(run.metrics)


@app.command()
def evaluate(run_dir: Path = typer.Argument(..., help="a run directory"),
             judge: Optional[Path] = typer.Option(None, "--judge", help="a classifier run that scores generated "
                                                  "samples (fid, precision, recall, coverage, judge accuracy)")
             ) -> None:
    """Re-compute a run's metrics, figures and report from its saved weights."""
    with user_errors():
        from . import api
        metrics = api.evaluate(run_dir, judge=judge)
        _print_path(run_dir, metrics.get("status"))
        _print_metrics(metrics)


@app.command()
def show(run_dir: Path = typer.Argument(..., help="a run directory"),
         as_json: bool = typer.Option(False, "--json", help="print metrics.json")) -> None:
    """Summarize a run: what was trained, how far, and its metrics."""
    with user_errors():
        from . import api
        from .report import overview_rows
        run = api.show(run_dir)
        if as_json:
            typer.echo(json.dumps(run.metrics, indent=2))
            return
        _print_path(run.path, run.status)
        for label, text in overview_rows(run):
            out.print(f"{label}: {escape(text)}", highlight=False, soft_wrap=True)
        _print_metrics(run.metrics)


@app.command()
def sample(run_dir: Path = typer.Argument(..., help="a run directory whose model decodes (ae, vae, gan, ...)"),
           sampler: Optional[str] = typer.Option(None, "--sampler", help="prior (the model's N(0, I)) | gaussian | "
                                                 "gmm (fitted to the training codes); default: prior for a "
                                                 "generative model, else gaussian"),
           n: int = typer.Option(64, "--n", help="samples to draw"),
           components: Optional[int] = typer.Option(None, "--components", help="gmm: mixture components (default 10)"),
           classes: Optional[str] = typer.Option(None, "--classes", help="a conditional model: the classes drawn "
                                                 "in turn, e.g. 3 or 0,5 (default: every class)"),
           seed: int = typer.Option(0, "--seed", help="seeds the fit and the draws"),
           out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default RUN/samples-<sampler>); "
                                                  "must not hold samples yet")) -> None:
    """Draw samples from a decoder: codes from a sampler, decoded; writes samples.npz, grid.png, sampler.json."""
    with user_errors():
        from . import api
        s = api.sample(run_dir, sampler, n=n, out=out_dir, seed=seed, components=components, classes=classes)
        fitted = s["fitted"].get("training_codes")
        on = f" fitted to {fitted} training codes" if fitted else ""
        _print_path(s["path"], None)
        _print_line(f"{s['n']} samples from the {s['sampler']} sampler{on}, "
                    f"{s['seconds']['fit'] + s['seconds']['draw']:.1f} s")


@app.command()
def datasets() -> None:
    """List every data set: shape, size, source, and whether it is available offline."""
    with user_errors():
        from . import api
        table = Table("name", "shape", "size", "source", "offline")
        for d in api.datasets():
            table.add_row(d.name, d.shape_str, f"{d.size:,}" if d.size else "-", d.source,
                          "yes" if d.offline else "no")
        out.print(table)


@app.command()
def models() -> None:
    """List the model families (model.kind), what each can do, and what it is."""
    with user_errors():
        from .models.family import CAPABILITIES, families
        table = Table("kind", "capabilities", "what it is")
        for f in families():
            table.add_row(f.kind, ", ".join(c for c in CAPABILITIES if f.has(c)), f.description)
        out.print(table)


@app.command()
def configs() -> None:
    """List the shipped configs and studies; run any of them by name (aelab train mnist-vae)."""
    with user_errors():
        from .shipped import catalog
        table = Table("kind", "name", "what it is")
        for s in catalog():
            table.add_row(s.kind, s.name, s.description)
        out.print(table)
        _print_line("run one by name: aelab train NAME, aelab study run NAME, aelab lso-study lso-paper")


@app.command()
def report(directory: Path = typer.Argument(..., help="a run, study or LSO output directory"),
           out_file: Optional[Path] = typer.Option(None, "--out", help="where to write (default DIR/report.html)")) -> None:
    """Write a self-contained report.html (figures inlined, works offline)."""
    with user_errors():
        from .reporting import write_html_report
        _print_line(f"wrote {write_html_report(directory, out_file)}")


@app.command()
def explore(run_dir: Path = typer.Argument(..., help="an autoencoder run directory"),
            port: int = typer.Option(8765, "--port", help="TCP port"),
            host: str = typer.Option("127.0.0.1", "--host", help="address to bind (default: this machine only)"),
            classifier: Optional[Path] = typer.Option(None, "--classifier", help="a classifier run: enables latent-space optimization")) -> None:
    """Serve a local web page to explore the run's latent space."""
    with user_errors():
        from .explore import serve
        serve(run_dir, host=host, port=port, classifier=classifier)


study_app = typer.Typer(no_args_is_help=True, help="Studies: many runs from one spec (sweeps, searches).")
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run(
    study_file: Path = typer.Argument(..., help="study spec (YAML), or a shipped study's name (aelab configs)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="study directory (default runs/study-<name>)"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (default: a journal file in the study directory)"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="parallel worker processes (local: default 1) or trials in flight (ray: default as many as the cluster's CPUs hold)"),
    trials: Optional[int] = typer.Option(None, "--trials", help="trial budget (grid: at least the grid size)"),
    executor: str = typer.Option("local", "--executor", help="local (worker processes here) or ray (one Ray task per trial)"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: a local Ray instance)"),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="Ray: CPUs each trial's task reserves"),
    gpus_per_trial: float = typer.Option(0.0, "--gpus-per-trial", help="Ray: GPUs each trial's task reserves (fractions share a GPU)"),
    no_fuse: bool = typer.Option(False, "--no-fuse", help="train every run alone (default: runs whose models stack train as one batched model)"),
) -> None:
    """Run or continue a study; writes results.csv, summary.md and figures."""
    with user_errors():
        from .studies import run_study
        from .studies.executors import make_executor
        runner = make_executor(executor, workers, address, cpus_per_trial, gpus_per_trial)
        result = run_study(study_file, out=out_dir, storage=storage, trials=trials, executor=runner,
                           progress=True, fuse=not no_fuse)  # one line per trial on stderr, a live line on a terminal
        done = sum(r.state == "complete" for r in result.rows)
        _print_line(f"{result.path}: {done} complete, {len(result.rows) - done} failed trials")
        if not out.is_terminal:  # a pipe or a file: the markdown, as summary.md has it
            _print_line((result.path / "summary.md").read_text())
            return
        from .studies.results import summary_console  # a terminal: a table that fits its width
        for part in summary_console(result.rows, result.context, result.best, out.width):
            out.print(part, highlight=False)


@app.command()
def lso(
    classifier: Path = typer.Option(..., "--classifier", help="classifier run directory (optimized against)"),
    target: List[str] = typer.Option(..., "--target", help="class index (3) or probabilities (0,0,0,.5,0,0,0,0,.5,0); repeatable"),
    decoder: Optional[Path] = typer.Option(None, "--decoder", help="AE/VAE run directory (pixel space: scores realism)"),
    n: int = typer.Option(10, "--n", help="samples per target"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default runs/lso-<time>); must not hold LSO output yet"),
    space: str = typer.Option("latent", "--space", help="latent | pixels (the paper's input-optimization baseline)"),
    optimizer: str = typer.Option("normalized", "--optimizer", help="normalized (the paper's Algorithm 3) | adam | sgd"),
    lr: Optional[float] = typer.Option(None, "--lr", help="normalized: rate r in C = -r*E (0.5); adam/sgd: step size"),
    threshold: float = typer.Option(0.001, "--threshold", help="success: mean squared error over classes <= this"),
    steps: int = typer.Option(200, "--steps", help="updates per restart (0: score the start points as they are)"),
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
    with user_errors():
        from . import lso as L
        opts = L.LSOOptions(space=space, optimizer=optimizer, lr=lr, steps=steps, restarts=restarts,
                            parallel=parallel, threshold=threshold, start=start, prior_penalty=prior_penalty,
                            box=box, shell=shell, max_step=max_step, seed=seed)
        s = L.run_lso(classifier, target, decoder, n, out_dir, opts, judge, evaluate_)
        scores = {k: v for k, v in s.get("evaluation", {}).items() if k != "table"}
        _print_path(s["path"], None)
        _print_metrics({k: v for k, v in s.items() if isinstance(v, (int, float))} | scores)
        if "evaluation" in s:
            _print_line(L.per_target_markdown(s["evaluation"]["table"]))


@app.command("lso-study")
def lso_study(study_file: Path = typer.Argument(..., help="LSO experiment file (kind: lso), or a shipped one's name"),
              out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default runs/lso-<name>)")) -> None:
    """Run an LSO experiment file: train or reuse its runs, run every method, write table + grid."""
    with user_errors():
        from .lso.study import run_lso_study
        result = run_lso_study(study_file, out_dir, progress=True)  # a line per training and method on stderr
        _print_line((Path(result["path"]) / "table.md").read_text())


def _print_line(text: str) -> None:
    """Plain text as it is: no markup, no highlighting, no wrapping at the
    terminal's width (tables and paths stay whole)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _print_path(path, status: str | None) -> None:
    _print_line(f"{path}" + (f"  [{status}]" if status else ""))


def _print_repeats(summary: dict) -> None:
    _print_path(summary["path"], f"{summary['repeats']} seeds, {summary['trained']}, {summary['seconds']:.1f} s")
    table = Table("metric", "mean ± std", "min", "max")
    for k, s in summary["metrics"].items():
        table.add_row(k, f"{s['mean']:.4g} ± {s['std']:.2g}", f"{s['min']:.4g}", f"{s['max']:.4g}")
    out.print(table)


def _print_metrics(metrics: dict) -> None:
    table = Table("metric", "value")
    for k, v in metrics.items():
        text = f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else ("—" if v is None else str(v))
        table.add_row(k, text)
    out.print(table)
