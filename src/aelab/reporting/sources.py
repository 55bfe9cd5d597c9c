"""What goes into ``report.html``, read from a run, study or LSO directory.

Each ``*_context`` function returns plain data (titles, tables as header +
rows, figure paths, config text) and does no rendering, so it can be tested
on its own; :mod:`aelab.reporting.render` turns it into HTML.
"""
from __future__ import annotations

import csv
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from ..errors import RunDirError
from ..report import format_value, metric_rows, overview_rows
from ..runs import CONFIG, FIGURES, load_run, read_json
from ..spec import read_mapping

IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".svg", ".webp")
STUDY_FILE, RESULTS, LSO_SAMPLES, LSO_SUMMARY = "study.yaml", "results.csv", "samples.npz", "summary.json"


def detect_kind(path: Path) -> str:
    """``run``, ``study`` or ``lso``, from the files ``path`` holds."""
    if not path.is_dir():
        raise RunDirError(f"{path}: no such directory")
    if (path / CONFIG).exists():
        return "run"
    if (path / STUDY_FILE).exists():
        return "study"
    if (path / LSO_SAMPLES).exists() or (path / LSO_SUMMARY).exists():
        return "lso"
    raise RunDirError(f"{path}: not a run, study or LSO output directory "
                      f"(expected {CONFIG}, {STUDY_FILE} or {LSO_SAMPLES})")


def figures_in(*folders: Path) -> list[Path]:
    """Every image file directly inside ``folders``, in name order."""
    found = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return found


def table(header: list[str], rows: list[list], best: set[int] = frozenset()) -> dict:
    """A table for the template: header, formatted cells, indices of rows to highlight."""
    return {"header": header, "rows": [[_cell(v) for v in r] for r in rows], "best": set(best)}


def _cell(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    return format_value(v)


# ------------------------------------------------------------------- run
def run_context(path: Path) -> dict:
    """A run: overview, metrics, per-epoch history, figures, resolved config."""
    run = load_run(path)
    history = run.history
    hist_keys = list(history[0]) if history else []
    return {
        "kind": "run", "title": f"Run {run.path.name}", "status": run.status,
        "overview": overview_rows(run),
        "metrics": table(["metric", "value"], [list(r) for r in metric_rows(run.metrics)]),
        "history": table(hist_keys, [[row.get(k) for k in hist_keys] for row in history]),
        "figures": figures_in(path / FIGURES),
        "config": (path / CONFIG).read_text(),
    }


# ----------------------------------------------------------------- study
def study_context(path: Path) -> dict:
    """A study: comparison table (one row per trial, mean ± std over seeds),
    failed trials with their reason, figures, the study file."""
    spec = read_mapping(path / STUDY_FILE)  # a damaged study.yaml is one line naming it
    spec_text = (path / STUDY_FILE).read_text()
    objectives = {str(k): str(v) for k, v in _mapping(spec.get("objectives")).items()}
    params = [str(k) for k in _mapping(spec.get("space"))]
    rows = read_results(path / RESULTS)
    complete = [r for r in rows if r.get("status") == "complete"]
    return {
        "kind": "study", "title": f"Study {spec.get('name') or path.name}",
        "status": f"{len(complete)} complete, {len(rows) - len(complete)} failed",
        "overview": _study_overview(spec, objectives, params),
        "comparison": comparison_table(complete, params, objectives),
        "failed": table(["trial", *params, "reason"],
                        [[r["trial"], *[r.get(p, "") for p in params], r.get("fail_reason", "")]
                         for r in rows if r.get("status") != "complete"]),
        "figures": figures_in(path / FIGURES),
        "config": spec_text,
    }


def read_results(path: Path) -> list[dict]:
    """``results.csv`` as dicts; a repeated column name keeps its first value
    (files from before ``trial_seconds`` repeated ``seconds``).  A file that
    is not CSV text is one line naming it."""
    if not path.exists():
        return []
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            rows = []
            for values in reader:
                row: dict = {}
                for k, v in zip(header, values):
                    row.setdefault(k, v)
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as e:
        raise RunDirError(f"{path}: not a readable CSV file ({e})") from None
    return rows


def comparison_table(rows: list[dict], params: list[str], objectives: dict[str, str]) -> dict:
    """Objectives as mean ± std, then the other metrics; the best row per
    objective is highlighted."""
    skip = {"trial", "status", "repeats", "fail_reason", "runs", *params, *objectives,
            *[f"{o}_std" for o in objectives]}
    others = [k for k in (rows[0] if rows else {}) if k not in skip]
    header = ["trial", *params, *[f"{o} {'↓' if d == 'min' else '↑'}" for o, d in objectives.items()],
              "seeds", *others]
    body = [[r["trial"], *[r.get(p, "") for p in params],
             *[_pm(r.get(o), r.get(f"{o}_std")) for o in objectives], r.get("repeats", ""),
             *[_num(r.get(k)) for k in others]] for r in rows]
    return table(header, body, best=_best_rows(rows, objectives))


def _best_rows(rows: list[dict], objectives: dict[str, str]) -> set[int]:
    best = set()
    for o, direction in objectives.items():
        scored = [(_float(r.get(o)), i) for i, r in enumerate(rows) if math.isfinite(_float(r.get(o)))]
        if scored:
            best.add((min(scored) if direction == "min" else max(scored))[1])
    return best


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _num(v):
    """A CSV cell as a number when it is one (so it is formatted like the rest)."""
    f = _float(v)
    return v if math.isnan(f) and v not in ("nan", "NaN") else f


def _pm(mean, std) -> str:
    m, s = _float(mean), _float(std)
    if math.isnan(m):
        return "—"
    return f"{format_value(m)} ± {format_value(s)}" if math.isfinite(s) else format_value(m)


def _study_overview(spec: dict, objectives: dict, params: list[str]) -> list[tuple[str, str]]:
    return [("strategy", str(spec.get("strategy", "?"))),
            ("searched", ", ".join(params) or "—"),
            ("objectives", ", ".join(f"{k} ({v})" for k, v in objectives.items()) or "—"),
            ("seeds per configuration", str(spec.get("repeats", 1)))]


# ------------------------------------------------------------------- LSO
def lso_context(path: Path) -> dict:
    """An LSO output (``aelab lso``): the run summary, the quality table
    (``summary.json``'s ``evaluation.table`` when the samples were judged),
    success per target from ``samples.npz``, the sample grid and latent walk."""
    summary = _read_summary(path / LSO_SUMMARY)
    evaluation = summary.get("evaluation") if isinstance(summary.get("evaluation"), dict) else {}
    rest = {k: v for k, v in summary.items() if k != "evaluation"}
    rest |= {f"evaluation.{k}": v for k, v in evaluation.items() if k != "table"}
    rate = summary.get("success_rate")
    return {
        "kind": "lso", "title": f"Latent-space optimization {path.name}",
        "status": f"success rate {format_value(rate)}" if isinstance(rate, (int, float)) else "",
        "summary": table(["setting or measure", "value"], [[k, v] for k, v in flatten(rest).items()]),
        "quality": records_table(evaluation.get("table") or []),
        "per_target": per_target_table(path / LSO_SAMPLES),
        "figures": figures_in(path, path / FIGURES),
    }


def _read_summary(path: Path) -> dict:
    return read_json(path) if path.exists() else {}


def _mapping(v) -> dict:
    return v if isinstance(v, dict) else {}


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested mappings as dotted keys; lists of scalars joined for display."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, key + ".")
        elif isinstance(v, list):
            out[key] = ", ".join(_cell(x) if not isinstance(x, (list, dict)) else json.dumps(x) for x in v)
        else:
            out[key] = v
    return out


def records_table(records: list) -> dict:
    """A list of row dicts (e.g. the LSO quality table) as one table."""
    rows = [r for r in records if isinstance(r, dict)]
    header = []
    for r in rows:
        header += [k for k in r if k not in header]
    return table(header, [[r.get(k) for k in header] for r in rows])


def per_target_table(path: Path) -> dict:
    """Per distinct target: samples, success rate, mean steps (from samples.npz;
    ``targets`` is one class index or one probability vector per sample)."""
    if not path.exists():
        return table([], [])
    try:
        with np.load(path, allow_pickle=False) as npz:
            targets, success = np.asarray(npz["targets"]), np.asarray(npz["success"]).astype(bool).ravel()
            steps = np.asarray(npz["steps"], dtype=np.float64).ravel()
        targets = targets.reshape(len(targets), -1).astype(np.float64)
        if not len(targets) == len(success) == len(steps):
            raise ValueError(f"{len(targets)} targets, {len(success)} success flags, {len(steps)} steps")
    except (KeyError, ValueError, TypeError, IndexError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise RunDirError(f"{path}: expected arrays 'targets', 'success' and 'steps' of one length "
                          f"({' '.join(str(e).split())[:160]})") from None
    _, first = np.unique(targets, axis=0, return_index=True)
    rows = []
    for i in sorted(first):
        sel = np.all(targets == targets[i], axis=1)
        ok = success[sel]
        rows.append([_target_name(targets[i]), int(sel.sum()), float(ok.mean()),
                     float(steps[sel][ok].mean()) if ok.any() else math.nan])
    return table(["target", "samples", "success rate", "mean steps to success"], rows)


def _target_name(vec: np.ndarray) -> str:
    """A class index as is; a one-hot vector as its class; else ``k:p+...``."""
    if len(vec) == 1:
        return format_value(vec[0].item())
    nz = np.flatnonzero(vec)
    return str(int(nz[0])) if len(nz) == 1 else "+".join(f"{int(k)}:{vec[k]:g}" for k in nz)
