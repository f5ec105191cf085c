"""Server settings: flags of ``lucidtrace serve`` over ``LUCIDTRACE_*`` variables over defaults."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lucidtrace import environment_variables as env

__all__ = ["ServerSettings", "SettingsError"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class SettingsError(ValueError):
    """A setting has a value the server cannot use (the message names the variable)."""


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server reads at start.

    Attributes:
        database_url: Store URL (``None``: ``LUCIDTRACE_DATABASE_URL`` or ``./lucidtrace.db``).
        host: Interface to listen on.
        port: TCP port.
        auth: Require an API key (ingest, API) or a signed-in session (pages) on every route
            but the health checks and the sign-in page.
        session_secret: Key that signs session cookies (``None``: generated at start, so
            sessions end when the server restarts).
        session_max_age_seconds: How long a sign-in lasts.
        max_body_bytes: Largest request body accepted, as sent (compressed).
        max_decompressed_bytes: Largest body after gzip decompression.
        max_spans_per_request: Most spans in one ingest request.
        max_attributes_per_span: Most attributes (and event attributes) on one span.
        max_attribute_depth: Deepest nesting of an attribute value (OTLP kvlist / array).
        max_concurrent_ingest: Ingest requests processed at once; more get 503 + Retry-After.
        retry_after_seconds: The ``Retry-After`` sent with a 503.
        ingest_checks: Run the trace-only faithfulness checks on traces as they are ingested.
    """

    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 6006
    auth: bool = False
    session_secret: str | None = None
    session_max_age_seconds: int = 7 * 24 * 3600
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_spans_per_request: int = 10_000
    max_attributes_per_span: int = 1_000
    max_attribute_depth: int = 16
    max_concurrent_ingest: int = 8
    retry_after_seconds: int = 1
    ingest_checks: bool = False

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingsError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port must be between 0 and 65535, got {self.port}")
        if self.session_secret is not None and len(self.session_secret) < 16:
            raise SettingsError(
                f"the session secret ({env.LUCIDTRACE_SESSION_SECRET}) must be at least 16 "
                "characters; generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``LUCIDTRACE_*`` variables, with ``overrides`` (flags) on top.

        An override of ``None`` means "not given" and leaves the variable or default in force.

        Raises:
            SettingsError: A variable holds a value of the wrong kind (the message names it).
        """
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, (variable, parse) in _FROM_ENV.items():
            raw = source.get(variable)
            if raw is None or (raw.strip() == "" and field != "auth"):
                continue
            try:
                values[field] = parse(raw.strip())
            except ValueError:
                raise SettingsError(f"{variable}={raw!r:.60} is not a valid value") from None
        known = {f.name for f in dataclasses.fields(cls)}
        for name, value in overrides.items():
            if name not in known:
                raise TypeError(f"unknown server setting {name!r}")
            if value is not None:
                values[name] = value
        return cls(**values)


_POSITIVE = (
    "session_max_age_seconds",
    "max_body_bytes",
    "max_decompressed_bytes",
    "max_spans_per_request",
    "max_attributes_per_span",
    "max_attribute_depth",
    "max_concurrent_ingest",
    "retry_after_seconds",
)


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


_FROM_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "database_url": (env.LUCIDTRACE_DATABASE_URL, str),
    "host": (env.LUCIDTRACE_HOST, str),
    "port": (env.LUCIDTRACE_PORT, int),
    "auth": (env.LUCIDTRACE_AUTH, _flag),
    "session_secret": (env.LUCIDTRACE_SESSION_SECRET, str),
    "session_max_age_seconds": (env.LUCIDTRACE_SESSION_MAX_AGE, int),
    "max_body_bytes": (env.LUCIDTRACE_MAX_BODY_BYTES, int),
    "max_decompressed_bytes": (env.LUCIDTRACE_MAX_DECOMPRESSED_BYTES, int),
    "max_spans_per_request": (env.LUCIDTRACE_MAX_SPANS_PER_REQUEST, int),
    "max_attributes_per_span": (env.LUCIDTRACE_MAX_ATTRIBUTES_PER_SPAN, int),
    "max_attribute_depth": (env.LUCIDTRACE_MAX_ATTRIBUTE_DEPTH, int),
    "max_concurrent_ingest": (env.LUCIDTRACE_MAX_CONCURRENT_INGEST, int),
    "retry_after_seconds": (env.LUCIDTRACE_RETRY_AFTER, int),
    "ingest_checks": (env.LUCIDTRACE_INGEST_CHECKS, _flag),
}
