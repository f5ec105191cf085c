"""Reading lucidtrace's environment variables, with a warning (never an error) on bad values."""

from __future__ import annotations

import os

from lucidtrace.tracer._log import log_once

_FALSE = frozenset({"0", "false", "no", "off"})
_TRUE = frozenset({"1", "true", "yes", "on"})


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean variable (``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    log_once(
        f"env:{name}", "%s=%r is not a boolean (use true or false); using %s", name, raw, default
    )
    return default


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    """Read an integer variable of at least ``minimum``."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = minimum - 1
    if value < minimum:
        log_once(
            f"env:{name}",
            "%s=%r is not an integer >= %d; using %d",
            name,
            raw,
            minimum,
            default,
        )
        return default
    return value


def env_float(name: str, default: float) -> float:
    """Read a non-negative number of seconds."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = -1.0
    if not value >= 0.0:
        log_once(f"env:{name}", "%s=%r is not a number >= 0; using %s", name, raw, default)
        return default
    return value
