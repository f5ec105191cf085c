"""Errors of the store that a user can cause and fix.

Every message is one line that says what went wrong and what to do about it; the CLI prints it
as is, without a traceback.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousTraceIdError",
    "StoreError",
    "TraceNotFoundError",
    "describe_database_error",
]

_CONNECT_FAILURES = ("refused", "failed", "timeout", "timed out", "resolve")


class StoreError(Exception):
    """A problem with the store that the user can fix; the message says how."""


class TraceNotFoundError(StoreError, LookupError):
    """No trace of the project has the given id (or id prefix)."""


class AmbiguousTraceIdError(StoreError, LookupError):
    """An id prefix matches more than one trace."""


def describe_database_error(exc: BaseException, where: str) -> str:
    """One line describing a database driver error, for a :class:`StoreError` message.

    Args:
        exc: The error raised by SQLAlchemy or the driver.
        where: The database, as shown to the user (never with a password).
    """
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split()) or type(original).__name__
    lowered = text.lower()
    if "file is not a database" in lowered or "file is encrypted" in lowered:
        return f"{where} is not a SQLite database: point --database-url at a lucidtrace store"
    if "unable to open database file" in lowered:
        return (
            f"cannot open {where}: check that the file and its directory exist and are "
            "readable and writable"
        )
    if "readonly database" in lowered or "read-only" in lowered:
        return f"{where} is read-only: lucidtrace needs write access to the file and its directory"
    if "database is locked" in lowered:
        return f"{where} is locked by another process: retry, or stop the process that holds it"
    if "connect" in lowered and any(w in lowered for w in _CONNECT_FAILURES):
        return (
            f"cannot connect to {where} ({text[:200]}): check that the server is running and "
            "the URL is right"
        )
    if len(text) > 300:
        text = text[:297] + "..."
    return f"database error on {where}: {text}"
