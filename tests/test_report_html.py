"""``aelab report DIR``: one self-contained report.html for a run, a study and
an LSO output (every section present, every figure inlined, no external URL)."""
from __future__ import annotations

import base64
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

import aelab
from aelab import lso
from aelab.cli import app as cli_app
from aelab.errors import RunDirError
from aelab.reporting import write_html_report
from aelab.studies import run_study

from conftest import TINY


class _Refs(HTMLParser):
    """Every src/href value and the ids of the page's sections."""

    def __init__(self):
        super().__init__()
        self.refs, self.sections, self.imgs = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("src", "href", "action", "poster", "srcset") and v is not None]
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "img":
            self.imgs.append(a["src"])


def parse(html: str) -> _Refs:
    p = _Refs()
    p.feed(html)
    return p


def assert_self_contained(html: str) -> _Refs:
    """No network fetch can happen: no URL scheme, no protocol-relative
    reference, every src/href an inline data: URI or an in-page anchor."""
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", html)
    assert "@import" not in html and "url(" not in html
    refs = parse(html)
    assert all(r.startswith(("data:", "#")) for r in refs.refs), [r[:40] for r in refs.refs]
    return refs


def inlined(src: str) -> bytes:
    return base64.b64decode(src.split(",", 1)[1])


def _cfg(**model) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["model"].update(model)
    cfg["eval"]["figures"] = True
    cfg["train"].update(epochs=2, batch_size=256)  # small and fast: the report is under test, not the model
    return cfg


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    vae = aelab.train(_cfg(kind="vae"), out=root / "vae").path
    clf_cfg = _cfg(kind="classifier", encoder=[32])
    clf_cfg["eval"]["figures"] = False
    clf = aelab.train(clf_cfg, out=root / "clf").path
    return {"root": root, "vae": vae, "clf": clf}


# ---------------------------------------------------------------------- run
def test_run_report_has_every_section_and_every_figure(runs):
    path = write_html_report(runs["vae"])
    assert path == runs["vae"] / "report.html"
    html = path.read_text()
    refs = assert_self_contained(html)
    assert refs.sections == ["metrics", "figures", "history", "config"]
    figures = sorted((runs["vae"] / "figures").glob("*.png"))
    assert len(figures) >= 4 and len(refs.imgs) == len(figures)
    for fig, src in zip(figures, refs.imgs):
        assert src.startswith("data:image/png;base64,") and inlined(src) == fig.read_bytes()
    metrics = json.loads((runs["vae"] / "metrics.json").read_text())
    assert f"{metrics['recon_mse']:.4g}" in html and "elbo" in html and "knn_acc" in html
    assert "latent_dim: 2" in html and "kind: vae" in html           # the resolved config
    history = html[html.index('id="history"'):html.index('id="config"')]
    assert history.count("<tr") == 1 + 2 and "train_loss" in history  # header + one row per epoch


# -------------------------------------------------------------------- study
def test_study_report_has_the_comparison_table_and_plots(runs):
    study = {"name": "opt", "base": copy.deepcopy(TINY), "set": ["train.epochs=1", "train.batch_size=512"],
             "space": {"train.optimizer": ["sgd", "adam"]}, "objectives": {"recon_mse": "min"},
             "repeats": 2, "strategy": "grid"}
    result = run_study(study, out=runs["root"] / "study")
    html = write_html_report(result.path).read_text()
    refs = assert_self_contained(html)
    assert refs.sections == ["comparison", "figures", "failed", "config"]
    figures = sorted((result.path / "figures").glob("*.png"))
    assert figures and len(refs.imgs) == len(figures)
    comparison = html[html.index('id="comparison"'):html.index('id="figures"')]
    assert comparison.count("<tr") == 1 + 2                          # header + one row per configuration
    assert "recon_mse ↓" in comparison and "sgd" in comparison and "adam" in comparison
    best = min(result.rows, key=lambda r: r.mean("recon_mse"))
    best_row = re.search(r'<tr class="best">(.*?)</tr>', comparison, re.S).group(1)
    assert best.values["train.optimizer"] in best_row and " ± " in best_row


# ---------------------------------------------------------------------- LSO
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # Frechet distance of 4 tiny samples
def test_lso_report_has_the_grids_and_the_quality_table(runs):
    out = runs["root"] / "lso"
    lso.run_lso(runs["clf"], ["3", "7"], decoder=runs["vae"], n=2, out=out,
                options=lso.LSOOptions(steps=20, restarts=2, parallel=2), judge=runs["clf"], evaluate_samples=True)
    html = write_html_report(out).read_text()
    refs = assert_self_contained(html)
    assert refs.sections == ["quality", "targets", "figures", "summary"]
    images = sorted(p for p in out.iterdir() if p.suffix == ".png")
    assert {p.name for p in images} >= {"grid.png", "walk.png"} and len(refs.imgs) == len(images)
    quality = html[html.index('id="quality"'):html.index('id="targets"')]
    assert "<table>" in quality and "fid" not in quality.split("<table>")[0]
    assert quality.count("<tr") == 1 + 3                             # header, targets 3 and 7, all
    targets = html[html.index('id="targets"'):html.index('id="figures"')]
    assert "success rate" in targets and targets.count("<tr") == 1 + 2
    assert "evaluation.fid" in html and "options.steps" in html


def test_lso_report_reads_the_minimal_format(tmp_path):
    """samples.npz (images, targets, success, steps, latents) + summary.json + an image."""
    import numpy as np
    np.savez(tmp_path / "samples.npz", images=np.zeros((4, 1, 2, 2)), targets=np.array([1, 1, 2, 2]),
             success=np.array([True, False, True, True]), steps=np.array([3, 20, 5, 7]), latents=np.zeros((4, 2)))
    (tmp_path / "summary.json").write_text(json.dumps({"success_rate": 0.75, "options": {"steps": 20}}))
    (tmp_path / "grid.png").write_bytes(_PNG)
    html = write_html_report(tmp_path).read_text()
    assert_self_contained(html)
    targets = html[html.index('id="targets"'):html.index('id="figures"')]
    assert "<td>1</td><td>2</td><td>0.5</td><td>3</td>" in targets.replace("\n", "").replace(" ", "")
    assert "<td>2</td><td>2</td><td>1</td><td>6</td>" in targets.replace("\n", "").replace(" ", "")
    assert "success rate 0.75" in html and "not evaluated" in html


_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


# ------------------------------------------------------------ CLI, bad input
def test_cli_writes_report_html(runs, tmp_path):
    target = tmp_path / "r.html"
    r = CliRunner().invoke(cli_app, ["report", str(runs["vae"]), "--out", str(target)])
    assert r.exit_code == 0, r.output
    assert_self_contained(target.read_text())


@pytest.mark.parametrize("setup, expected", [
    (lambda d: None, "not a run, study or LSO output directory"),
    (lambda d: (d / "summary.json").write_text("{nope"), "summary.json: not valid JSON"),
    (lambda d: (d / "summary.json").write_text("[1, 2]"), "summary.json: expected a JSON object"),
    (lambda d: np_save(d / "samples.npz", x=[1]), "samples.npz: expected arrays 'targets', 'success' and 'steps'"),
])
def test_bad_directories_are_one_line_and_write_nothing(tmp_path, setup, expected):
    d = tmp_path / "dir"
    d.mkdir()
    setup(d)
    with pytest.raises(RunDirError, match=re.escape(expected)):
        write_html_report(d)
    r = CliRunner().invoke(cli_app, ["report", str(d)])
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and expected in lines[0]
    assert not (d / "report.html").exists() and not list(d.glob(".report.html*"))


def test_missing_directory(tmp_path):
    with pytest.raises(RunDirError, match="no such directory"):
        write_html_report(tmp_path / "absent")


def np_save(path: Path, **arrays) -> None:
    import numpy as np
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
