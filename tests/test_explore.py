"""``aelab explore``: the session (codes, plane, decoding), the Starlette API
(valid and malformed requests), the step-wise LSO route, and the page in a
real headless Chromium (Debian's, driven by Playwright)."""
from __future__ import annotations

import asyncio
import copy
import json
import os
import random
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
from starlette.requests import Request
from starlette.testclient import TestClient
from typer.testing import CliRunner

import aelab
from aelab.cli import app as cli_app
from aelab.explore import build_app, is_loopback, load_session
from aelab.explore.app import read_body
from aelab.explore.session import fit_plane, to_uint8
from aelab.explore.validation import MAX_BATCH, MAX_BODY, RequestError

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
    clf = _train(root / "clf", kind="classifier", encoder=[32])
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


# ------------------------------------------------- malformed input, in full
# Every body the validators refuse is a 4xx whose one-line error starts with
# the field it names; none may reach a 500.  ``api`` is the module's app with
# server exceptions answered as 500s (as uvicorn would), so a test sees them.
FIELD_ERROR = re.compile(r"(body|codes|start|target|steps)(\[\d+\])*: \S")
DIGITS = "1" + "0" * 41  # the reported literal: 10**41


@pytest.fixture(scope="module")
def api(client):
    return TestClient(client.app, base_url="http://127.0.0.1:8765", raise_server_exceptions=False)


def _refused(r, field: str | None = None) -> str:
    """The error of a 4xx JSON answer: short, one line, naming ``field`` (any field when None)."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json", r.headers["content-type"]
    error = r.json()["error"]
    assert isinstance(error, str) and FIELD_ERROR.match(error) and "\n" not in error and len(error) < 200, error
    assert field is None or re.match(re.escape(field) + r"[\[:]", error), (field, error)
    return error


@pytest.mark.parametrize("route, body, field", [
    ("decode", f'{{"codes": [[{DIGITS}, 0, 0]]}}', "codes[0][0]"),
    ("decode", f'{{"codes": [[0, -1{"0" * 400}, 0]]}}', "codes[0][1]"),   # past float: math.isfinite overflowed
    ("decode", f'{{"codes": [[0, 0, 1{"0" * 5000}]]}}', "codes[0][2]"),   # past int()'s 4300 digits
    ("decode", '{"codes": [[1e400, 0, 0]]}', "codes[0][0]"),
    ("lso", f'{{"target": {DIGITS}, "start": [0, 0, 0]}}', "target"),
    ("lso", f'{{"target": 1{"0" * 5000}, "start": [0, 0, 0]}}', "target"),
    ("lso", f'{{"target": 3, "start": [0, 0, 0], "steps": 1{"0" * 400}}}', "steps"),
    ("lso", f'{{"target": 3, "start": [1{"0" * 400}, 0, 0]}}', "start[0]"),
])
def test_reported_huge_numbers_are_a_422_naming_the_field(api, route, body, field):
    r = api.post(f"/api/{route}", content=body.encode())
    assert r.status_code == 422
    _refused(r, field)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"codes": ' + b"[" * 100_000, b'{"a": ' * 100_000,
                                  b"[" * MAX_BODY])
def test_reported_deep_nesting_is_a_400(api, body):
    r = api.post("/api/decode", content=body)
    assert r.status_code == 400 and _refused(r) == "body: not valid JSON (nested too deeply)"


@pytest.mark.parametrize("route, body, status, error", [
    ("decode", b'{"codes": [[0, 0, 0]], "codes": [[1, 1, 1]]}', 400, 'body: key "codes" appears more than once'),
    ("decode", b'{"codes": [[0, 0, 0]], "pad": 1}', 422, 'body: unknown key "pad", expected codes'),
    ("lso", b'{"target": 3, "start": [0, 0, 0], "step": 5}', 422, 'body: unknown key "step", expected target, '),
    ("decode", '{"codes": [[0, 0, 0]]}'.encode("utf-16"), 400, "body: not UTF-8"),
    ("decode", b'{"codes": [[0, 0, \xff]]}', 400, "body: not UTF-8 (invalid start byte at byte 18)"),
    ("decode", b"", 400, "body: not valid JSON"),
    ("decode", b"null", 400, "body: expected a JSON object, got null"),
    ("decode", b'"codes"', 400, 'body: expected a JSON object, got "codes"'),
    ("decode", b"{}", 422, "codes: expected a non-empty list of latent codes, got nothing"),
    ("decode", b'{"codes": [[0, 0, 0], 7]}', 422, "codes[1]: expected a list of 3 numbers (the latent dimension), got 7"),
    ("decode", f'{{"codes": [[0, 0, "{"x" * 5000}"]]}}'.encode(), 422,
     'codes[0][2]: expected a finite number within ±10000, got "xxx'),
    ("lso", b'{"target": 3.0, "start": [0, 0, 0]}', 422, "target: expected an integer in 0..9, got 3.0"),
    ("lso", b'{"target": true, "start": [0, 0, 0]}', 422, "target: expected an integer in 0..9, got true"),
    ("lso", b'{"start": [0, 0, 0]}', 422, "target: expected an integer in 0..9, got nothing"),
    ("lso", b'{"target": 3}', 422, "start: expected a list of 3 numbers (the latent dimension), got nothing"),
    ("lso", b'{"target": 3, "start": [0, 0, 0], "steps": 2.0}', 422, "steps: expected an integer in 1..300, got 2.0"),
    ("lso", b'{"target": 3, "start": [0, 0, 0], "steps": null}', 422, "steps: expected an integer in 1..300, got null"),
])
def test_each_decision_on_malformed_bodies(api, route, body, status, error):
    r = api.post(f"/api/{route}", content=body)
    assert r.status_code == status and _refused(r).startswith(error), r.text[:300]


def test_a_byte_order_mark_is_skipped(api):
    assert api.post("/api/decode", content=b'\xef\xbb\xbf{"codes": [[0, 0, 0]]}').status_code == 200


@pytest.mark.parametrize("declared, refused", [(b"9" * 5000, True), (b"0" * 5000 + b"1", False), (b"\xb2", False)])
def test_odd_content_lengths_are_judged_safely(declared, refused):
    """A 5000-digit length is too large without int(); leading zeros and '²'
    (str.isdigit accepts it, int() does not) are left to the streamed size.
    A raw ASGI request: the test client re-encodes a non-ASCII header."""
    scope = {"type": "http", "method": "POST", "path": "/api/decode", "headers": [(b"content-length", declared)]}

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    if refused:
        with pytest.raises(RequestError, match=r"^body: 9{17}\.\.\. bytes, at most") as e:
            asyncio.run(read_body(Request(scope, receive)))
        assert e.value.status == 413
    else:
        assert asyncio.run(read_body(Request(scope, receive))) == b"{}"


def test_oversized_body_is_a_413_with_and_without_content_length(api):
    body = b'{"codes": [[0, 0, 0]], "pad": "' + b"x" * MAX_BODY + b'"}'
    for content in (body, (body[i:i + 65536] for i in range(0, len(body), 65536))):
        r = api.post("/api/lso", content=content)
        assert r.status_code == 413 and _refused(r, "body")


@pytest.mark.parametrize("poison_at, status, steps", [(3, 200, 3), (0, 422, None)])
def test_lso_path_ends_before_a_non_finite_step(api, monkeypatch, poison_at, status, steps):
    """A diverged model (NaN probabilities) never reaches the JSON encoder,
    which refuses NaN: the path ends before it, or the start is refused."""
    import aelab.explore.lso as explore_lso
    real = explore_lso.lso.lso_steps

    def diverging(*args, **kwargs):
        for state in real(*args, **kwargs):
            if state.step >= poison_at:
                state.probs = state.probs * float("nan")
            yield state

    monkeypatch.setattr(explore_lso.lso, "lso_steps", diverging)
    r = api.post("/api/lso", json={"target": 3, "start": [0, 0, 0], "steps": 20})
    assert r.status_code == status, r.text[:300]
    if steps is None:
        assert _refused(r, "start").endswith("non-finite values at this code")
    else:
        assert len(r.json()["steps"]) == steps


# The fuzzer: valid bodies written as JSON text, then broken one way each, so
# that huge literals, NaN, repeated keys and deep nesting can be written.
GOOD_NUMBERS = ["0", "-0.5", "1", "2.25", "-3", "1e2", "10000", "-1E-3"]
BAD_SCALARS = ["true", "false", "null", '"1"', '""', '"\\ud800"', "[]", "{}", '{"a": 1}', "NaN", "Infinity",
               "-Infinity"]


def _bad_coordinate(rng) -> str:
    """A JSON value that is not a number within ±1e4."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(["", "-"]) + "1" + "0" * rng.randint(5, 5000)
    if kind == 1:
        return rng.choice(["1e400", "-1e309", "1e308", "3.5e38", "1e39", "10000.001", "-10000.5", "1e5", "-2e4"])
    if kind == 2:
        return rng.choice(BAD_SCALARS + ["[0]", "[1, 2, 3]"])
    depth = rng.randint(2, 400)
    return "[" * depth + "0" + "]" * depth


def _bad_int(rng, lo: int, hi: int) -> str:
    """A JSON value that is not an integer in lo..hi."""
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.choice([lo - 1 - rng.randrange(1000), hi + 1 + rng.randrange(10**6)]))
    if kind == 1:
        return rng.choice(["", "-"]) + "1" + "0" * rng.randint(20, 5000)
    if kind == 2:
        return rng.choice([f"{lo}.0", f"{hi}.0", "2.5", "1e1", "1E0"])
    return rng.choice(BAD_SCALARS + [f"[{lo}]", f'"{hi}"'])


def _code(rng, dim: int = 3) -> str:
    return "[" + ", ".join(rng.choice(GOOD_NUMBERS) for _ in range(dim)) + "]"


def _bad_code(rng) -> str:
    """A value that is not a list of 3 coordinates."""
    kind = rng.randrange(3)
    if kind == 0:
        return _code(rng, rng.choice([0, 1, 2, 4, 5, 50]))
    if kind == 1:
        values = [rng.choice(GOOD_NUMBERS) for _ in range(3)]
        values[rng.randrange(3)] = _bad_coordinate(rng)
        return "[" + ", ".join(values) + "]"
    return rng.choice(BAD_SCALARS[:-3] + ["[[0, 0, 0]]", "0"])


def _bad_codes(rng) -> str:
    """A value that is not a list of 1..MAX_BATCH codes."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(BAD_SCALARS + ["[0, 0, 0]", "0"])
    if kind == 1:
        return "[" + ", ".join([_code(rng)] * (MAX_BATCH + 1 + rng.randrange(50))) + "]"
    codes = [_code(rng) for _ in range(rng.randint(1, 5))]
    codes[rng.randrange(len(codes))] = _bad_code(rng)
    return "[" + ", ".join(codes) + "]"


def _good(rng, route: str) -> dict[str, str]:
    """A valid body as field -> JSON text (``steps`` sometimes left out)."""
    if route == "decode":
        return {"codes": "[" + ", ".join(_code(rng) for _ in range(rng.randint(1, 4))) + "]"}
    fields = {"target": str(rng.randrange(10)), "start": _code(rng), "steps": str(rng.randint(1, 300))}
    return fields if rng.random() < 0.7 else {k: v for k, v in fields.items() if k != "steps"}


def _text(pairs) -> str:
    return "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}"


def _break_field(rng, route: str, fields: dict[str, str]) -> tuple[str, str]:
    """One field made invalid (or a required one dropped): (body, that field)."""
    if route == "decode":
        name, bad = "codes", _bad_codes(rng)
    else:
        name = rng.choice(["target", "start", "steps"])
        bad = {"target": lambda: _bad_int(rng, 0, 9), "steps": lambda: _bad_int(rng, 1, 300),
               "start": lambda: _bad_code(rng)}[name]()
    if name != "steps" and rng.random() < 0.15:
        return _text((k, v) for k, v in fields.items() if k != name), name
    return _text({**fields, name: bad}.items()), name


def _break_body(rng, fields: dict[str, str]) -> bytes:
    """The body as a whole made invalid: always an error naming ``body``."""
    good = _text(fields.items())
    kind = rng.randrange(8)
    if kind == 0:
        unknown = rng.choice(["step", "code", "Codes", "pad", "", "codes ", "\\u0000"])
        return _text([*fields.items(), (unknown, "1")]).encode()
    if kind == 1:
        key = rng.choice(list(fields))
        return _text([*fields.items(), (key, fields[key])]).encode()
    if kind == 2:
        return rng.choice([f"[{good}]", "[]", "0", "-1e999", "NaN", '"x"', "null", "true", DIGITS]).encode()
    if kind == 3:
        return good[:rng.randrange(len(good))].encode()          # a strict prefix: never closed
    if kind == 4:
        at = rng.randrange(len(good) + 1)
        junk = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xfe\xff", b"\x80"])
        return good[:at].encode() + junk + good[at:].encode()
    if kind == 5:
        return good.encode(rng.choice(["utf-16", "utf-16-be", "utf-32"]))  # \x00 bytes or a non-UTF-8 BOM
    if kind == 6:
        return rng.choice([b"[", b"{\"a\": "]) * rng.randint(2_000, 200_000)
    return b"\xef\xbb\xbf" + good[:rng.randrange(len(good))].encode()


def fuzz_cases(seed: int = 0, n: int = 400) -> list[tuple[str, bytes, str]]:
    """``n`` malformed bodies, deterministic: (route, body, field the error must name)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        route = rng.choice(["decode", "lso"])
        fields = _good(rng, route)
        if rng.random() < 0.6:
            body, field = _break_field(rng, route, fields)
            cases.append((route, body.encode(), field))
        else:
            cases.append((route, _break_body(rng, fields), "body"))
    return cases


def test_fuzzed_malformed_bodies_are_all_a_4xx_naming_the_field(api):
    rng = random.Random(1)
    for route, body, field in fuzz_cases():
        chunked = rng.random() < 0.2   # no Content-Length: the streamed size check
        content = (body[i:i + 4096] for i in range(0, len(body), 4096)) if chunked else body
        r = api.post(f"/api/{route}", content=content, headers={"content-type": "application/json"})
        _refused(r, field)
    assert api.post("/api/decode", json={"codes": [[0, 0, 0]]}).status_code == 200


def test_fuzz_cases_are_valid_before_they_are_broken(api):
    """The fuzzer's starting bodies pass, so each refusal is the breakage's doing."""
    rng = random.Random(2)
    for route in ("decode", "lso") * 5:
        body = _text(_good(rng, route).items())
        assert api.post(f"/api/{route}", content=body.encode()).status_code == 200, body


# ---------------------------------------------------------------------- CLI
@pytest.mark.parametrize("args, expected", [
    (["explore", "{tmp}/nope"], "no such run directory"),
    (["explore", "{clf}"], "is a classifier run; explore needs a model that embeds and decodes"),
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
