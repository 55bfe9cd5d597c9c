"""``aelab explore``: a local web page for walking a run's latent space.

The test codes as a scatter (PCA plane above 2-D), live decoding of any
point, sliders over the full code, and optionally latent-space optimization
replayed step by step.  A Starlette app served by uvicorn, bound to
127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import ipaddress
import socket
import warnings
from pathlib import Path

from ..errors import AelabError
from .app import create_app
from .lso import LSOHandler
from .session import Session, load_session

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_app(run_dir: str | Path, classifier: str | Path | None = None, host: str = "127.0.0.1"):
    """Load the run (and classifier) and make the app; on a loopback host only
    loopback Host headers are accepted (a guard against DNS rebinding)."""
    session = load_session(run_dir)
    lso = LSOHandler(session, classifier, run_dir) if classifier is not None else None
    if not is_loopback(host):
        warnings.warn(f"explore: serving on {host}, reachable from other machines; "
                      "the default 127.0.0.1 keeps it local", stacklevel=2)
    return create_app(session, allowed_hosts=LOOPBACK_NAMES + [host] if is_loopback(host) else None, lso=lso)


def serve(run_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8765,
          classifier: str | Path | None = None) -> None:
    """Serve the explorer until interrupted."""
    import torch
    import uvicorn

    from .. import threads
    torch.set_num_threads(threads.resolve(None, fallback=1))  # small decodes: $AELAB_THREADS or one thread
    app = build_app(run_dir, classifier, host)
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"aelab explore: http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C to stop)", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """A bound socket for uvicorn; a busy port or unknown address is one line."""
    try:
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except (OSError, OverflowError) as e:
        raise AelabError(f"--host {host} --port {port}: cannot listen there ({getattr(e, 'strerror', None) or e})") from None
    return sock


__all__ = ["serve", "build_app", "create_app", "load_session", "Session", "is_loopback"]
