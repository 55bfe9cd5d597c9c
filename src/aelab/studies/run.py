"""``run_study``: a study file in, a study directory out.

```
STUDY_DIR/
  study.yaml        the study file as run (base config resolved inline)
  optuna.journal    the default storage (any Optuna storage via --storage)
  runs/<hash>/      one ordinary run directory per (configuration, seed)
  results.csv       one row per trial
  summary.md        mean ± std per configuration
  figures/          bar charts, side-by-side reconstructions and latents, ...
```
Running the same command again continues the study; several processes (or
``--workers N``, or Ray tasks: ``executors.py``) share it through the storage,
on one machine or many (``docs/cluster.md``).
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import optuna
import yaml

from .. import interrupts
from ..atomic import write_text
from ..errors import ConfigError
from ..outdir import check_dir, file_lock, make_dir
from ..runs import read_json, write_json
from ..shipped import resolve
from ..spec import apply_overrides
from .results import TrialRow, summary_md, results_csv, trial_rows
from .executors import Executor, LocalExecutor, run_workers, warm_up  # noqa: F401 (re-exported)
from .context import StudyContext
from .proposer import Proposer
from .runner import create_or_load, fingerprint
from .space import check_space, parse_space
from .architecture.checks import check_architecture
from .architecture.proposer import ArchitectureProposer
from .spec import StudySpec, load_study_spec, _base_mapping
from .storage import check_storage_url, safe_url
from .strategies import get_strategy


OUTPUTS_LOCK = ".outputs.lock"
IDENTITY = ".study.json"  # which study, in which storage, this directory's outputs belong to


@dataclass
class StudyResult:
    path: Path
    name: str
    rows: list[TrialRow]
    best: list[int]
    figures: list[Path]
    context: StudyContext | None = None  # names, objectives and strategy, for summaries


def prepare(source, out: str | Path | None = None, storage: str | None = None,
            trials: int | None = None, fuse: bool = True) -> StudyContext:
    """Validate everything about a study before anything is written."""
    source = resolve(source, "study")
    spec, _, folder = load_study_spec(source)
    label = "study" if isinstance(source, dict) else str(source)
    name = spec.name or (Path(source).stem if not isinstance(source, dict) else "study")
    base = apply_overrides(_base_mapping(spec, folder, label),
                           [*spec.set, f"eval.figures={str(spec.trial_figures).lower()}"])
    params = parse_space(spec.space)
    check_space(params, base, label)
    strategy = get_strategy(spec.strategy)
    budget = strategy.budget(params, trials or spec.trials)
    check_storage_url(storage)
    study_dir = Path(out) if out else Path("runs") / f"study-{name}"
    dump = {"space": spec.model_dump(mode="json")["space"], "objectives": spec.objectives,
            "strategy": spec.strategy, "repeats": spec.repeats, "seed": spec.seed, "base": base}
    proposer = Proposer()
    if spec.architecture is not None:
        dump["architecture"] = spec.architecture.model_dump(mode="json")
        proposer = ArchitectureProposer(spec.architecture, check_architecture(spec, base, budget, label))
    return StudyContext(name=name, study_dir=study_dir, storage_url=storage, base=base, params=params,
                        objectives=dict(spec.objectives), repeats=spec.repeats, strategy=spec.strategy,
                        seed=spec.seed, budget=budget, fingerprint=fingerprint(dump),
                        proposer=proposer, spec=spec, fuse=spec.fuse and fuse)


def write_outputs(ctx: StudyContext, study: optuna.Study) -> StudyResult:
    """results.csv, summary.md and figures from the storage's current state."""
    rows = trial_rows(study, ctx)
    best = _best(study)
    write_text(ctx.study_dir / "results.csv", results_csv(rows, ctx))
    write_text(ctx.study_dir / "summary.md", summary_md(rows, ctx, best))
    from .figures import study_figures
    figures = study_figures(ctx.study_dir, rows, ctx, best) + ctx.proposer.outputs(ctx, study)
    return StudyResult(ctx.study_dir, ctx.name, rows, best, figures, ctx)


def _best(study: optuna.Study) -> list[int]:
    try:
        return [t.number for t in study.best_trials]
    except ValueError:
        return []


def run_study(source, *, out=None, storage=None, workers: int = 1, trials: int | None = None,
              executor: Executor | None = None, progress=False, fuse: bool = True) -> StudyResult:
    """Run (or continue) a study to its budget and write its outputs.
    ``executor`` runs the trials (default: ``LocalExecutor(workers)``);
    ``progress`` (True, or a :class:`aelab.progress.Reporter`) reports each
    finished trial on stderr, with a live line on a terminal; ``fuse=False``
    trains every run alone even where the study file lets them fuse."""
    executor = executor or LocalExecutor(workers)
    ctx = prepare(source, out, storage, trials, fuse)
    check_dir(ctx.study_dir)
    identity = check_identity(ctx)
    executor.check()  # an unreachable cluster or database leaves no study directory behind
    study = create_or_load(ctx)
    again = interrupts.command("aelab", "study", "run", source, "--out", ctx.study_dir) \
        if isinstance(source, (str, Path)) else "run the study again"
    with interrupts.hint(f"continue with `{again}` (finished trials are kept)"):
        make_dir(ctx.study_dir)
        write_json(ctx.study_dir / IDENTITY, identity)
        _write_study_file(ctx)
        with _watching(study, ctx, progress):
            executor.run(ctx)
        with file_lock(ctx.study_dir / OUTPUTS_LOCK):  # several processes may share a study: one writes at a time
            return write_outputs(ctx, study)


def check_identity(ctx: StudyContext) -> dict:
    """What the study directory must belong to: this study (its file's
    fingerprint) in this storage.  A directory holding the outputs of
    another study, or of this one in another storage, is refused in one
    line instead of having its results.csv and figures replaced."""
    storage = safe_url(ctx.storage_url) if ctx.storage_url else "journal file in the study directory"
    mine = {"name": ctx.name, "storage": storage,
            "fingerprint": hashlib.sha256(ctx.fingerprint.encode()).hexdigest()[:16]}
    path = ctx.study_dir / IDENTITY
    if path.exists():
        other = read_json(path)
        if other != mine:
            what = "another study file" if other.get("fingerprint") != mine["fingerprint"] else \
                f"another storage ({other.get('storage')})"
            raise ConfigError(f"{ctx.study_dir}: holds the outputs of study '{other.get('name')}' from {what}; "
                              f"choose another --out")
    return mine


def _watching(study: optuna.Study, ctx: StudyContext, progress):
    """The progress of the trials, read from the storage while they run (or nothing)."""
    if not progress:
        return contextlib.nullcontext()
    from ..progress import Reporter
    from .progress import StudyWatcher
    return StudyWatcher(study, ctx, progress if isinstance(progress, Reporter) else Reporter())


def _write_study_file(ctx: StudyContext) -> None:
    spec: StudySpec = ctx.spec
    data = spec.model_dump(mode="json", exclude_none=True)
    data.update(name=ctx.name, base=ctx.base, set=[])
    write_text(ctx.study_dir / "study.yaml", yaml.safe_dump(data, sort_keys=False))
