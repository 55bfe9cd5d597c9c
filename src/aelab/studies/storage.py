"""Where a study lives: Optuna storages by URL.

No URL: a journal file inside the study directory (no set-up, safe for
several processes on one machine).  ``sqlite:///...``, ``postgresql://...``,
``mysql://...``: Optuna's RDB storage, with heartbeats so a trial whose
worker vanished on another machine is failed and retried.  A path ending in
``.journal``: a journal file elsewhere.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from ..errors import ConfigError

JOURNAL = "optuna.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def journal_path(url: str | None, study_dir: Path) -> Path | None:
    """The journal file a URL designates, or None for an RDB URL."""
    if url is None:
        return study_dir / JOURNAL
    if url.split(":", 1)[0].split("+", 1)[0] in RDB_SCHEMES:
        return None
    if url.endswith(".journal"):
        return Path(url.removeprefix("journal:"))
    raise ConfigError(f"--storage {url}: expected sqlite:///FILE, postgresql://..., mysql://... "
                      f"or a path ending in .journal")


def open_storage(url: str | None, study_dir: Path) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the storage; one clear line if it cannot be."""
    path = journal_path(url, study_dir)
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
            return RDBStorage(url, heartbeat_interval=30, grace_period=120,
                              heartbeat_stale_trial_callback=retry)
    except Exception as e:  # SQLAlchemy/driver errors have many types
        first = " ".join(str(e).split())[:200] or type(e).__name__
        raise ConfigError(f"--storage {url or path}: cannot open ({first})") from None


def check_storage_url(url: str | None) -> None:
    """Validate the URL's form before anything is created."""
    journal_path(url, Path("."))
