"""LSO experiment files: train (or reuse) the runs, run every method, evaluate.

An LSO study is not a hyperparameter study (no search space; each method is
a different generator or optimizer against the same classifier), so it has
its own small file format, run by ``aelab lso-study FILE``::

    kind: lso
    name: lso-paper
    classifier: ../configs/mnist14-classifier.yaml   # optimized against
    judge: ../configs/mnist14-judge.yaml             # scores the samples
    targets: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    n: 10                                            # samples per target
    threshold: 0.001
    methods:
      - name: LSO-1 (AE, latent 5)
        decoder: ../configs/lso-ae-latent5.yaml
        options: {optimizer: normalized, restarts: 1, parallel: 1}
        paper: {success_rate: 0.64, recon_mse: 0.0239}
      - name: pixels
        space: pixels
        realism: ../configs/lso-ae-latent20.yaml     # the AE that scores realism

Config paths are relative to the study file.  Each config is trained once
into ``OUT/runs/<name>-<hash of the resolved config>/`` and read back on
later runs (an interrupted training resumes).  Outputs in ``OUT`` (default
``runs/lso-<name>``): ``table.md``, ``results.csv``, ``summary.json``,
``grid.png`` (rows: methods, columns: targets), and per method a folder with
what ``aelab lso`` writes.
"""
from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import interrupts, threads
from ..atomic import write_text
from ..cache import cached_run, config_hash
from ..errors import ConfigError
from ..outdir import check_dir, exclusive
from ..runs import CONFIG, METRICS, Run, write_json
from ..shipped import resolve
from ..spec import format_validation_error, load_config, read_mapping
from . import outputs, quality
from .compose import LSOError, load_classifier
from .progress import LSOProgress, method_line, training_line
from .run import LSOOptions, evaluate, generate, prepare, summary_of, write_outputs
from .tables import markdown
from .targets import target_matrix


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MethodSpec(_Strict):
    name: str
    decoder: str | None = None
    space: Literal["latent", "pixels"] = "latent"
    realism: str | None = Field(default=None, description="pixel space: the AE that scores realism")
    options: dict[str, Any] = Field(default_factory=dict)
    paper: dict[str, float] | None = None


class LSOStudySpec(_Strict):
    kind: Literal["lso"]
    name: str
    classifier: str
    judge: str
    targets: list[Union[int, str, list[float]]]
    n: int = Field(default=10, ge=1)
    threshold: float = Field(default=0.001, gt=0)
    seed: int = 0
    methods: list[MethodSpec] = Field(min_length=1)


def load_study(path: str | Path) -> tuple[LSOStudySpec, Path]:
    """Validate an LSO study file (a path, or a shipped name such as
    ``lso-paper``); every config it names must exist and validate."""
    p = resolve(path, "study")
    try:
        spec = LSOStudySpec.model_validate(read_mapping(p))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(p))) from None
    for i, m in enumerate(spec.methods):
        if m.space == "latent" and m.decoder is None:
            raise ConfigError(f"{p}: methods[{i}] ({m.name}): a latent-space method needs 'decoder'")
        try:
            LSOOptions(**m.options).check()
        except (TypeError, LSOError) as e:
            raise ConfigError(f"{p}: methods[{i}].options: {e}") from None
    for rel in dict.fromkeys([spec.classifier, spec.judge, *[m.decoder or m.realism for m in spec.methods]]):
        if rel is None:
            continue
        load_config(p.parent / rel)  # a missing or invalid config fails here, before any training
    return spec, p.parent


DOING = {"reused": "reading", "resumed": "resuming", "trained": "training"}


def train_or_reuse(config_path: Path, runs_dir: Path, progress: LSOProgress | None = None,
                   role: str = "run") -> Run:
    """The finished run of a config file (:func:`aelab.cache.cached_run`),
    named ``<config name>-<hash>``; told on ``progress`` as the ``role`` it plays."""
    cfg = load_config(config_path)
    name = cfg.name or config_path.stem
    if progress is None:
        return cached_run(cfg, runs_dir, name)
    run_dir = runs_dir / f"{name}-{config_hash(cfg)}"  # where cached_run keeps it
    how = "reused" if (run_dir / METRICS).exists() else "resumed" if (run_dir / CONFIG).exists() else "trained"
    progress.begin(f"{DOING[how]} {role} {name}")
    start = time.perf_counter()
    run = cached_run(cfg, runs_dir, name)
    progress.finish(training_line(role, name, how, time.perf_counter() - start, run.path))
    return run


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_lso_study(path: str | Path, out: str | Path | None = None, progress=False) -> dict:
    """Run every method of the study file ``path``; returns the summary.
    One command at a time writes ``out``; an interrupted study continues
    where it stopped (its finished trainings are reused).  ``progress``
    (True, or a :class:`aelab.progress.Reporter`) reports each training and
    method on stderr, with a live line on a terminal."""
    spec, base = load_study(path)
    out = check_dir(Path(out) if out else Path("runs") / f"lso-{spec.name}")
    again = interrupts.command("aelab", "lso-study", path, "--out", out)
    reporter = None
    if progress:
        from ..progress import Reporter
        reporter = progress if isinstance(progress, Reporter) else Reporter()
    steps = _trainings(spec, base) + len(spec.methods)
    with exclusive(out), interrupts.hint(f"continue with `{again}` (finished trainings are reused)"), \
            threads.share(threads.cpus()), LSOProgress(spec.name, steps, reporter) as steps_done:
        return _run_methods(spec, base, out, steps_done)  # (a fixed thread count: the table repeats)


def _trainings(spec: LSOStudySpec, base: Path) -> int:
    """How many configs the study trains (each once, whatever roles it plays)."""
    rels = [spec.classifier, spec.judge, *[m.decoder or m.realism for m in spec.methods]]
    return len({(base / rel).resolve() for rel in rels if rel is not None})


def _role(m: MethodSpec) -> str:
    return "decoder" if m.space == "latent" else "realism AE"


def _run_methods(spec: LSOStudySpec, base: Path, out: Path, progress: LSOProgress | None = None) -> dict:
    progress = progress or LSOProgress(spec.name, 0)
    runs, trained = out / "runs", {}

    def run_of(rel: str, role: str) -> Run:
        path = (base / rel).resolve()
        if path not in trained:
            trained[path] = train_or_reuse(base / rel, runs, progress, role)
        return trained[path]

    clf, judge = run_of(spec.classifier, "classifier"), run_of(spec.judge, "judge")
    rows, grid, results = [], [], {}
    for m in spec.methods:
        rel = m.decoder or m.realism
        ae = run_of(rel, _role(m)) if rel else None
        progress.begin(f"method {m.name}")
        options = LSOOptions(**{"threshold": spec.threshold, "seed": spec.seed, "space": m.space, **m.options})
        setup = prepare(clf.path, ae.path if ae else None, options)
        targets, names = target_matrix(spec.targets, setup.model.num_classes, spec.n)
        result = generate(setup, targets)
        summary = summary_of(setup, result, names) | {"evaluation": evaluate(setup, result, judge.path, spec.seed)}
        write_outputs(out / "methods" / slug(m.name), setup, result, names, summary)
        results[m.name] = summary
        rows.append(_row(m, ae, summary))
        progress.finish(method_line(rows[-1]))
        grid += outputs.grid_rows(m.name, result, names)
    progress.begin("writing table.md, results.csv, grid.png")
    rows.append(_real_row(setup, judge, names))
    grid.append(("real test", _real_images(setup.data, names)))
    _write(out, spec, rows, grid, names, results)
    return {"path": str(out), "rows": rows}


def _row(m: MethodSpec, ae: Run | None, s: dict) -> dict:
    ev, overall = s["evaluation"], s["evaluation"]["table"][-1]
    paper = m.paper or {}
    return {"method": m.name, "decoder_mse": (ae.metrics.get("recon_mse") if ae and m.space == "latent" else None),
            "threshold": s["options"]["threshold"], "success_rate": s["success_rate"],
            "success_at_0.001": s["success_at_0.001"], "one_start_success": s["restart_success_rate"],
            "steps": s["mean_steps_to_success"], "judge_accuracy": overall["judge_accuracy"],
            "recon_error": overall["recon_error"], "nearest_train": overall["nearest_train"],
            "diversity": overall["diversity"], "fid": ev["fid"], "fid_real_floor": ev["fid_real_floor"],
            "precision": ev["precision"], "recall": ev["recall"], "seconds": s["seconds"], "paper_success_rate": paper.get("success_rate"),
            "paper_decoder_mse": paper.get("recon_mse")}


def _real_images(data, names) -> np.ndarray:
    """One real test image per target class (a reference row for the grid)."""
    picks = [int(np.flatnonzero(data.y_test == int(n))[0]) if n.isdigit() else 0 for n in names]
    return data.x_test[picks]


def _real_row(setup, judge: Run, names) -> dict:
    """The same measures on real test images of the target classes: the
    ceiling (realism scored by the autoencoder of ``setup``, the last method's)."""
    data = setup.data
    digits = [int(n) for n in names if n.isdigit()]
    mask = np.isin(data.y_test, digits)
    x, y = data.x_test[mask], data.y_test[mask]
    targets = np.eye(setup.model.num_classes)[y]
    m = quality.per_sample(x, targets, load_classifier(judge.path, "judge")[0], data.x_train, setup.autoencoder)
    overall = quality.per_target_table(x, targets, np.ones(len(x), bool), np.zeros(len(x)), m)[-1]
    return {"method": "real test images", "decoder_mse": None, "threshold": None, "success_rate": None,
            "success_at_0.001": None, "one_start_success": None, "steps": None,
            "judge_accuracy": overall["judge_accuracy"], "recon_error": overall["recon_error"],
            "nearest_train": overall["nearest_train"], "diversity": overall["diversity"], "fid": None,
            "fid_real_floor": None, "precision": None, "recall": None, "seconds": None, "paper_success_rate": None, "paper_decoder_mse": None}


def _write(out: Path, spec: LSOStudySpec, rows, grid, names, results) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(out / "results.csv", buf.getvalue())
    write_text(out / "table.md", markdown(rows))
    outputs.save_grid(out / "grid.png", grid, names, f"{spec.name}: one sample per target (successful first)")
    write_json(out / "summary.json", {"study": spec.model_dump(), "methods": results, "rows": rows})
