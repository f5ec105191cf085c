"""The ``lucidtrace`` logger, and logging each kind of tracing failure once."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("lucidtrace")

_seen: set[str] = set()
_seen_lock = threading.Lock()


def log_once(kind: str, message: str, *args: object, exc_info: bool = False) -> bool:
    """Log ``message`` at WARNING the first time a failure of ``kind`` happens.

    Tracing failures tend to repeat on every span; one line per kind keeps the user's logs
    readable while still saying what went wrong.

    Args:
        kind: A stable key for the kind of failure (``"export"``, ``"mask:my_fn"``, ...).
        message: A ``logging``-style format string.
        *args: Arguments for ``message``.
        exc_info: Attach the exception being handled.

    Returns:
        True when this call logged, False when the kind was already logged.
    """
    with _seen_lock:
        if kind in _seen:
            return False
        _seen.add(kind)
    try:
        logger.warning(message, *args, exc_info=exc_info)
    except Exception:  # a broken log handler must not break the caller
        return True
    return True


def reset_log_once() -> None:
    """Forget which kinds were logged, so that tests can observe each log line."""
    with _seen_lock:
        _seen.clear()
