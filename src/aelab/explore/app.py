"""The explorer's ASGI app (Starlette).

Routes are fixed names; the page and its script are package data read into
memory once, and the API answers from the in-memory :class:`Session`, so no
part of a request path ever reaches the file system.
"""
from __future__ import annotations

from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .session import Session
from .validation import MAX_BODY, RequestError, check_keys, parse_body, parse_codes, parse_int

# The page may load only its own script and style, and images from data:/blob:.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
           "/explore.css": ("explore.css", "text/css; charset=utf-8")}


def static_assets() -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, media type), read once from the package."""
    folder = resources.files("aelab.explore") / "static"
    return {url: ((folder / name).read_bytes(), media) for url, (name, media) in _STATIC.items()}


def create_app(session: Session, allowed_hosts: list[str] | None = None, lso=None) -> Starlette:
    """The explorer for ``session``.  ``allowed_hosts`` (e.g. the loopback
    names) rejects other Host headers, which stops DNS-rebinding pages from
    reading the server; ``lso`` (an :class:`~aelab.explore.lso.LSOHandler`)
    answers ``POST /api/lso`` when a classifier was given."""
    assets = static_assets()

    def asset(request: Request) -> Response:
        body, media = assets[request.url.path]
        return Response(body, media_type=media, headers={"Content-Security-Policy": CSP,
                                                         "X-Content-Type-Options": "nosniff"})

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(session.info() | {"lso": lso is not None, "lso_classes": lso.classes if lso else []})

    async def points(request: Request) -> JSONResponse:
        return JSONResponse(session.points())

    async def decode(request: Request) -> JSONResponse:
        body = check_keys(parse_body(await read_body(request)), ("codes", "label") if session.conditional
                          else ("codes",))
        codes = parse_codes(body, session.latent_dim)
        label = parse_int(body, "label", 0, session.num_classes - 1) if session.conditional else None
        images = await run_in_threadpool(session.decode, codes, label)
        return JSONResponse({"shape": list(images.shape[1:]), "images": images.reshape(len(images), -1).tolist()})

    routes = [Route(url, asset, methods=["GET"]) for url in assets]
    routes += [Route("/api/info", info, methods=["GET"]), Route("/api/points", points, methods=["GET"]),
               Route("/api/decode", decode, methods=["POST"])]
    if lso is not None:
        routes.append(Route("/api/lso", _lso_route(session, lso), methods=["POST"]))
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={RequestError: _request_error, 404: _not_found, 405: _not_allowed})


def _lso_route(session: Session, lso):
    async def run_lso(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(lso, parse_body(await read_body(request))))
    return run_lso


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes,
    so an oversized upload is never held in memory whole."""
    declared = request.headers.get("content-length", "")
    if _declares_more(declared, limit):
        shown = declared if len(declared) <= 20 else f"{declared[:17]}..."
        raise RequestError(f"body: {shown} bytes, at most {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"body: more than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _declares_more(declared: str, limit: int) -> bool:
    """Whether a Content-Length value is a decimal number above ``limit``.
    ASCII digits only (``"²".isdigit()`` is true, but int() refuses it), and a
    value longer than the limit's digits is too large without int(), which
    refuses more than 4300 digits; anything else is left to the stream check."""
    if not (declared.isascii() and declared.isdigit()):
        return False
    digits = declared.lstrip("0") or "0"
    return len(digits) > len(str(limit)) or int(digits) > limit


async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


async def _not_found(request: Request, exc) -> JSONResponse:
    return JSONResponse({"error": f"{request.url.path}: not found"}, status_code=404)


async def _not_allowed(request: Request, exc) -> JSONResponse:
    return JSONResponse({"error": f"{request.method} {request.url.path}: method not allowed"}, status_code=405)
