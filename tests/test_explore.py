"""``aelab explore``: the session (codes, plane, decoding), the Starlette API
(valid and malformed requests), the step-wise LSO route, and the page in a
real headless Chromium (Debian's, driven by Playwright)."""
from __future__ import annotations

import copy
import json
import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from starlette.testclient import TestClient
from typer.testing import CliRunner

import aelab
from aelab.cli import app as cli_app
from aelab.explore import build_app, is_loopback, load_session
from aelab.explore.session import fit_plane, to_uint8
from aelab.explore.validation import MAX_BATCH, MAX_BODY

from conftest import TINY

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _train(out: Path, **model) -> Path:
    cfg = copy.deepcopy(TINY)
    cfg["model"].update(model)
    cfg["train"].update(epochs=3, batch_size=256)
    aelab.train(cfg, out=out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 3-D autoencoder run and a classifier run on the same digits split."""
    root = tmp_path_factory.mktemp("explore")
    ae = _train(root / "ae", latent_dim=3)
    clf = _train(root / "clf", kind="classifier", encoder=[32], output_activation="linear")
    return {"ae": ae, "clf": clf}


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(build_app(runs["ae"], runs["clf"]), base_url="http://127.0.0.1:8765") as c:
        yield c


# ------------------------------------------------------------------ session
def test_plane_is_identity_in_2d_and_pca_above():
    rng = np.random.default_rng(0)
    two = fit_plane(rng.normal(size=(50, 2)))
    assert two.kind == "identity" and np.allclose(two.project(np.eye(2)), np.eye(2))
    codes = rng.normal(size=(80, 5)) * [3, 2, 1, 0.5, 0.1]
    plane = fit_plane(codes)
    assert plane.kind == "pca" and np.allclose(plane.components @ plane.components.T, np.eye(2))
    oracle = PCA(n_components=2, random_state=0).fit(codes).transform(codes)
    np.testing.assert_allclose(plane.project(codes), oracle, atol=1e-10)


def test_session_decodes_like_the_model(runs):
    s = load_session(runs["ae"])
    model = aelab.load_model(runs["ae"])
    z = s.codes[:4].astype(np.float32)
    with torch.no_grad():
        x = model.decode(torch.as_tensor(z)).numpy()
    np.testing.assert_array_equal(s.decode(z), to_uint8(x, s.value_range))
    assert s.decode(z).shape == (4, 8, 8, 1) and s.decode(z).dtype == np.uint8
    assert len(s.codes) == len(s.labels) == 450  # the digits test split


def test_to_uint8_maps_the_data_range():
    x = np.array([-1.0, 0.0, 1.0, 3.0]).reshape(1, 1, 2, 2)
    assert to_uint8(x, (-1.0, 1.0)).ravel().tolist() == [0, 128, 255, 255]


def test_loopback_detection():
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "example.org"]))


# ---------------------------------------------------------------------- API
def test_page_and_assets_are_served_from_memory_with_a_csp(client):
    page = client.get("/")
    assert page.status_code == 200 and "explore.js" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for path in ("/", "/explore.js", "/explore.css"):
        body = client.get(path).text
        assert "http://" not in body and "https://" not in body
    for path in ("/../pyproject.toml", "/static/explore.js", "/config.yaml", "/model.safetensors"):
        r = client.get(path)
        assert r.status_code == 404 and "error" in r.json()


def test_info_and_points(client):
    info = client.get("/api/info").json()
    assert info["latent_dim"] == 3 and info["image_shape"] == [1, 8, 8] and info["plane"]["kind"] == "pca"
    assert info["classes"] == list(range(10)) and info["lso"] is True and info["lso_classes"] == list(range(10))
    pts = client.get("/api/points").json()
    assert len(pts["xy"]) == len(pts["labels"]) == len(pts["codes"]) == 450
    assert len(pts["xy"][0]) == 2 and len(pts["codes"][0]) == 3


def test_decode_a_batch(runs, client):
    codes = [[0.0, 0.0, 0.0], [0.5, -0.2, 1.0], [1, 2, 3]]
    r = client.post("/api/decode", json={"codes": codes})
    assert r.status_code == 200
    out = r.json()
    assert out["shape"] == [8, 8, 1] and len(out["images"]) == 3
    expected = load_session(runs["ae"]).decode(np.asarray(codes, np.float32))
    np.testing.assert_array_equal(np.asarray(out["images"]).reshape(3, 8, 8, 1), expected)


BAD_BODIES = {
    "not json": (b"{codes: 1", 400),
    "not an object": (b"[[0, 0, 0]]", 400),
    "no codes": (b'{"z": [[0, 0, 0]]}', 422),
    "empty": (b'{"codes": []}', 422),
    "codes not a list": (b'{"codes": "0,0,0"}', 422),
    "too short": (b'{"codes": [[0, 0]]}', 422),
    "too long": (b'{"codes": [[0, 0, 0, 0]]}', 422),
    "a string": (b'{"codes": [[0, "1", 0]]}', 422),
    "a bool": (b'{"codes": [[0, true, 0]]}', 422),
    "null": (b'{"codes": [[0, null, 0]]}', 422),
    "NaN": (b'{"codes": [[0, NaN, 0]]}', 422),
    "Infinity": (b'{"codes": [[0, -Infinity, 0]]}', 422),
    "huge": (b'{"codes": [[0, 1e300, 0]]}', 422),
    "nested": (b'{"codes": [[[0], 0, 0]]}', 422),
    "too many codes": (json.dumps({"codes": [[0, 0, 0]] * (MAX_BATCH + 1)}).encode(), 413),
    "too large a body": (b'{"codes": [[0, 0, 0]], "pad": "' + b"x" * MAX_BODY + b'"}', 413),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_malformed_decode_is_a_4xx_with_a_json_error_and_the_server_keeps_serving(client, name):
    body, status = BAD_BODIES[name]
    r = client.post("/api/decode", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error and "\n" not in error and "Traceback" not in error
    assert client.post("/api/decode", json={"codes": [[0, 0, 0]]}).status_code == 200


def test_oversized_chunked_body_is_refused_while_streaming(client):
    chunks = (b"x" * 65536 for _ in range(MAX_BODY // 65536 + 2))   # no Content-Length header
    r = client.post("/api/decode", content=chunks)
    assert r.status_code == 413 and "more than" in r.json()["error"]


def test_error_names_the_offending_value(client):
    r = client.post("/api/decode", content=b'{"codes": [[0, 0, 0], [1, NaN, 2]]}')
    assert r.json()["error"].startswith("codes[1][1]: expected a finite number")


def test_wrong_method_and_foreign_host_are_refused(client):
    assert client.get("/api/decode").status_code == 405
    assert client.get("/api/info", headers={"host": "attacker.example"}).status_code == 400


def test_lso_moves_towards_the_target_step_by_step(client):
    start = client.get("/api/points").json()["codes"][0]
    r = client.post("/api/lso", json={"target": 3, "start": start, "steps": 40})
    assert r.status_code == 200, r.text
    out = r.json()
    steps = out["steps"]
    assert steps[0]["step"] == 0 and np.allclose(steps[0]["code"], start, atol=1e-6)
    assert 1 < len(steps) <= 41 and all(len(s["code"]) == 3 and len(s["image"]) == 64 for s in steps)
    assert steps[-1]["prob"] > steps[0]["prob"] and steps[-1]["error"] < steps[0]["error"]
    assert out["success"] == (steps[-1]["error"] <= 0.001)


@pytest.mark.parametrize("body", [{"target": 10, "start": [0, 0, 0]}, {"target": "3", "start": [0, 0, 0]},
                                  {"target": 3, "start": [0, 0]}, {"target": 3, "start": [0, 0, 0], "steps": 0},
                                  {"target": 3, "start": [0, 0, 0], "steps": 10_000}])
def test_malformed_lso_is_a_4xx(client, body):
    r = client.post("/api/lso", json=body)
    assert r.status_code == 422 and r.json()["error"]


def test_without_a_classifier_there_is_no_lso_route(runs):
    with TestClient(build_app(runs["ae"]), base_url="http://127.0.0.1") as c:
        assert c.get("/api/info").json()["lso"] is False
        assert c.post("/api/lso", json={"target": 1, "start": [0, 0, 0]}).status_code == 404


# ---------------------------------------------------------------------- CLI
@pytest.mark.parametrize("args, expected", [
    (["explore", "{tmp}/nope"], "no such run directory"),
    (["explore", "{clf}"], "is a classifier run; explore needs an autoencoder"),
    (["explore", "{ae}", "--classifier", "{ae}"], "expected a classifier"),
])
def test_cli_bad_input_is_one_line(runs, tmp_path, args, expected):
    args = [a.format(tmp=tmp_path, clf=runs["clf"], ae=runs["ae"]) for a in args]
    r = CliRunner().invoke(cli_app, args)
    assert r.exit_code == 2, r.output
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and expected in lines[0], r.stderr


def test_cli_busy_port_is_one_line(runs):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        r = CliRunner().invoke(cli_app, ["explore", str(runs["ae"]), "--port", str(taken.getsockname()[1])])
    finally:
        taken.close()
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "cannot listen there" in lines[0], r.stderr


# ------------------------------------------------------------------ browser
def _chromium_or_skip():
    """Chromium must be there in CI (installed by .ci/install-chromium.sh); on a
    developer's machine without it the browser test is skipped, saying why."""
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing is None and not os.access(CHROMIUM, os.X_OK):
        missing = f"{CHROMIUM} is missing (bash .ci/install-chromium.sh installs Debian's chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture
def server(runs):
    """uvicorn serving the explorer on a free loopback port, in a thread."""
    import uvicorn
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(build_app(runs["ae"], runs["clf"]), log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert srv.started, "the explorer server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


FETCH_BAD = """async () => {
  const r = await fetch('/api/decode', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                        body: '{"codes": [[1, NaN, 0]]}'});
  return [r.status, (await r.json()).error];
}"""

DECODED_PIXELS = """() => {
  const c = document.getElementById('decoded');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let opaque = 0; for (let i = 3; i < d.length; i += 4) opaque += d[i] === 255;
  return opaque / (d.length / 4);
}"""


def test_in_a_real_browser(server):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       args=BROWSER_ARGS, viewport={"width": 1280, "height": 800})
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=20_000)
            assert page.get_attribute("#scatter", "data-points") == "450"
            page.wait_for_selector("#decoded[data-decoded='1']")          # the starting code
            before = page.text_content("#coords")
            page.click("#scatter", position={"x": 90, "y": 500})           # empty plane, far from the start
            page.wait_for_selector("#decoded[data-decoded='2']")
            assert page.text_content("#coords") != before
            assert page.evaluate(DECODED_PIXELS) == 1.0                    # the image was drawn
            status, error = page.evaluate(FETCH_BAD)
            assert status == 422 and "codes[0][1]" in error
            page.click("#scatter", position={"x": 500, "y": 120})          # still serving
            page.wait_for_selector("#decoded[data-decoded='3']")
            page.select_option("#lso-target", "3")                         # LSO, replayed step by step
            page.fill("#lso-steps", "8")
            page.click("#lso-run")
            page.locator("#lso-status", has_text="reached").wait_for(timeout=20_000)
            status = re.fullmatch(r"step (\d+)/(\d+): p\(target\) = [\d.]+ · (reached the target|target not reached)",
                                  page.text_content("#lso-status"))
            assert status and status[1] == status[2] and int(status[2]) <= 8
            assert int(status[2]) == 8 or status[3] == "reached the target"  # stops early only on success
            assert errors == []
        finally:
            browser.close()
