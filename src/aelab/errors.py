"""User-facing errors.

An :class:`AelabError` is a mistake in the user's input (a config key, a data
file, a layer that does not fit).  Its message is one line that names the
file, key or layer and what was expected; the CLI prints it without a
traceback and exits non-zero.  Anything else escaping the library is a bug.
"""
from __future__ import annotations


class AelabError(Exception):
    """A user mistake, reported as a single readable line."""

    exit_code = 2

    def __str__(self) -> str:  # keep it to one line whatever was passed in
        return " ".join(str(self.args[0]).split()) if self.args else ""


class ConfigError(AelabError):
    """A config key is unknown, mistyped or out of range."""


class DataError(AelabError):
    """A data file is missing, corrupt or does not match what was expected."""


class ModelSpecError(AelabError):
    """A layer spec does not fit the shapes flowing into it."""


class RunDirError(AelabError):
    """A run directory is missing, incomplete or not resumable."""
