"""Where a study lives: Optuna storages by URL.

No URL: a journal file inside the study directory (no set-up, safe for
several processes on one machine).  ``sqlite:///...``, ``postgresql://...``,
``mysql://...``: Optuna's RDB storage, with heartbeats so a trial whose
worker vanished on another machine is failed and retried.  A path ending in
``.journal``: a journal file elsewhere.

Two mechanisms retry a dead worker's trial, and exactly one of them wins:
``runner.recover_dead`` (a local worker's pid is gone: seconds) and the
heartbeat (no beat for ``AELAB_HEARTBEAT_GRACE`` seconds: any host).  Both
first move the trial RUNNING -> FAIL, which the RDB storage does under a row
lock and refuses for a finished trial; only the one whose move succeeded
queues the retry (``retry_stale`` here, the local path in ``recover_dead``).
"""
from __future__ import annotations

import functools
import os
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from ..errors import ConfigError

JOURNAL = "optuna.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
DRIVERS = {"postgresql": "the psycopg driver (pip install 'aelab[postgres]')",
           "postgres": "the psycopg driver (pip install 'aelab[postgres]')", "mysql": "a MySQL driver (pymysql)"}


def _seconds(name: str, default: int) -> int:
    """A whole number of seconds from the environment (tests shorten them)."""
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw}: expected a whole number of seconds") from None
    if value < 1:
        raise ConfigError(f"{name}={raw}: expected at least 1 second")
    return value


def heartbeat_interval() -> int:
    """Seconds between a running trial's heartbeats (RDB storages)."""
    return _seconds("AELAB_HEARTBEAT_INTERVAL", 30)


def heartbeat_grace() -> int:
    """Seconds without a heartbeat after which a trial's worker is presumed dead."""
    return _seconds("AELAB_HEARTBEAT_GRACE", 120)


def connect_timeout() -> int:
    """Seconds to wait for a database server before giving up with one line."""
    return _seconds("AELAB_CONNECT_TIMEOUT", 10)


def scheme(url: str) -> str:
    """``postgresql+psycopg2://...`` -> ``postgresql``."""
    return url.split(":", 1)[0].split("+", 1)[0]


def journal_path(url: str | None, study_dir: Path) -> Path | None:
    """The journal file a URL designates, or None for an RDB URL."""
    if url is None:
        return study_dir / JOURNAL
    if scheme(url) in RDB_SCHEMES:
        return None
    if url.endswith(".journal"):
        return Path(url.removeprefix("journal:"))
    raise ConfigError(f"--storage {url}: expected sqlite:///FILE, postgresql://..., mysql://... "
                      f"or a path ending in .journal")


def retry_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Heartbeat-stale callback: queue the dead trial's configuration once more,
    marked like ``recover_dead``'s retries (``retry_of``; ``queued`` so it is
    never pruned as over budget).  The dead worker's attributes are not copied:
    a copied ``worker`` would make the retry look dead to ``recover_dead``."""
    study.enqueue_trial(retry_params(trial), user_attrs={"queued": True, "retry_of": trial.number,
                                                  "retry_reason": f"no heartbeat for {heartbeat_grace()} s"})


def fail_stale(study: optuna.Study) -> None:
    """Fail (and, through ``retry_stale``, retry) trials whose heartbeat stopped.
    Optuna checks only when a worker starts a trial; a worker must also check
    before deciding that a study whose last trials are all RUNNING is finished."""
    from optuna.storages._heartbeat import is_heartbeat_enabled
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)


def retry_params(trial: optuna.trial.FrozenTrial) -> dict:
    """The configuration to run again: the trial's parameters, or, if its worker
    died before suggesting them, the queued ones it had popped (else a queued
    grid point would be lost and another sampled in its place)."""
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def open_storage(url: str | None, study_dir: Path) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the storage; one clear line if it cannot be."""
    path = journal_path(url, study_dir)
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        opener = _rdb.__wrapped__ if scheme(url) == "sqlite" else _rdb  # a file may be replaced: no cache
        return opener(url, heartbeat_interval(), heartbeat_grace(), connect_timeout(), os.getpid())
    except ConfigError:
        raise
    except ImportError:  # Optuna re-raises the driver's ModuleNotFoundError as a bare ImportError
        raise ConfigError(f"--storage {safe_url(url)}: needs {DRIVERS.get(scheme(url), 'its database driver')}, "
                          f"which is not installed") from None
    except Exception as e:  # SQLAlchemy/driver errors have many types
        first = " ".join(str(e).split("(Background on")[0].split())[:200] or type(e).__name__
        raise ConfigError(f"--storage {safe_url(url) if url else path}: cannot open ({first})") from None


SCHEMA_ATTEMPTS = 5


@functools.lru_cache(maxsize=16)
def _rdb(url: str, interval: int, grace: int, timeout: int, pid: int) -> RDBStorage:
    """One RDB storage (engine, connection pool) per URL and process: a Ray
    worker process runs many one-trial tasks, and connecting and checking the
    schema again for each one costs more than the trial's bookkeeping.  The
    pid in the key gives a forked worker its own connections."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=_engine_kwargs(url, timeout), heartbeat_interval=interval,
                                  grace_period=grace, heartbeat_stale_trial_callback=retry_stale)
        except (IntegrityError, ProgrammingError):
            # Several processes meeting an empty database all create Optuna's
            # schema; the losers see "already exists".  Once the winner is
            # done the schema is there: open again.
            if attempt == SCHEMA_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def _engine_kwargs(url: str, timeout: int) -> dict:
    """A bounded wait for the server: without it an unreachable host blocks
    for the operating system's TCP timeout (minutes)."""
    if scheme(url) in ("postgresql", "postgres", "mysql"):
        return {"connect_args": {"connect_timeout": timeout}}
    return {}


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: nothing to hide
        return url


def check_storage_url(url: str | None) -> None:
    """Validate the URL's form before anything is created."""
    journal_path(url, Path("."))
