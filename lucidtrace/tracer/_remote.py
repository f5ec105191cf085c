"""The remote destinations of ``configure()``: a lucidtrace server (spooled) and OTLP/HTTP.

Resolving the settings (arguments over environment variables over defaults) is light; the
exporters are imported only when a remote destination is configured.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lucidtrace.environment_variables import (
    LUCIDTRACE_API_KEY,
    LUCIDTRACE_ENDPOINT,
    LUCIDTRACE_OTLP_ENDPOINT,
    LUCIDTRACE_OTLP_HEADERS,
    LUCIDTRACE_SPOOL_DIR,
    LUCIDTRACE_SPOOL_MAX_BYTES,
)
from lucidtrace.tracer._log import log_once, logger
from lucidtrace.tracer._settings import env_int

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from lucidtrace.tracer._destinations import OtlpDestination
    from lucidtrace.tracer.http_export import HttpSpanExporter

DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024  # the same as http_export.DEFAULT_SPOOL_MAX_BYTES


def _env_text(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _check_url(value: str, argument: str) -> None:
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        msg = f"{argument} must be an http:// or https:// URL, got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True)
class RemoteSettings:
    """The resolved remote destinations (None: not configured)."""

    endpoint: str | None = None
    api_key: str | None = field(default=None, repr=False)
    spool_dir: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    otlp_endpoint: str | None = None
    otlp_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_queue_size: int = 100_000
    export_batch_size: int = 512

    @property
    def active(self) -> bool:
        """Whether any remote destination is configured."""
        return self.endpoint is not None or self.otlp_endpoint is not None

    @classmethod
    def resolve(
        cls,
        *,
        endpoint: str | None,
        api_key: str | None,
        spool_dir: str | os.PathLike[str] | None,
        spool_max_bytes: int | None,
        otlp_endpoint: str | None,
        otlp_headers: Mapping[str, str] | None,
        max_queue_size: int,
        export_batch_size: int,
    ) -> RemoteSettings:
        """Arguments, else environment variables, else defaults.

        Raises:
            ValueError: An argument is not valid (a URL that is not http(s), a size below 1).
        """
        if endpoint is not None:
            _check_url(endpoint, "endpoint")
        if otlp_endpoint is not None:
            _check_url(otlp_endpoint, "otlp_endpoint")
        if spool_max_bytes is not None and spool_max_bytes < 1:
            msg = "spool_max_bytes must be >= 1"
            raise ValueError(msg)
        headers = dict(otlp_headers) if otlp_headers is not None else _env_headers()
        directory = spool_dir if spool_dir is not None else _env_text(LUCIDTRACE_SPOOL_DIR)
        return cls(
            endpoint=endpoint if endpoint is not None else _env_text(LUCIDTRACE_ENDPOINT),
            api_key=api_key if api_key is not None else _env_text(LUCIDTRACE_API_KEY),
            spool_dir=None if directory is None else os.fspath(directory),
            spool_max_bytes=(
                spool_max_bytes
                if spool_max_bytes is not None
                else env_int(LUCIDTRACE_SPOOL_MAX_BYTES, DEFAULT_SPOOL_MAX_BYTES)
            ),
            otlp_endpoint=(
                otlp_endpoint if otlp_endpoint is not None else _env_text(LUCIDTRACE_OTLP_ENDPOINT)
            ),
            otlp_headers=headers,
            max_queue_size=max_queue_size,
            export_batch_size=export_batch_size,
        )


def _env_headers() -> dict[str, str]:
    from lucidtrace.tracer._destinations import parse_headers  # noqa: PLC0415 - light

    raw = _env_text(LUCIDTRACE_OTLP_HEADERS)
    if raw is None:
        return {}
    try:
        return parse_headers(raw)
    except ValueError as exc:
        log_once(
            f"env:{LUCIDTRACE_OTLP_HEADERS}",
            "%s is not key=value,key2=value2 (%s); sending no extra headers",
            LUCIDTRACE_OTLP_HEADERS,
            exc,
        )
        return {}


class Remote:
    """The open remote destinations of one configuration."""

    def __init__(self, http: HttpSpanExporter | None, otlp: OtlpDestination | None) -> None:
        self.http = http
        self.otlp = otlp

    @property
    def exporters(self) -> list[SpanExporter]:
        """The destinations to hand to lucidtrace's processor."""
        return [e for e in (self.http, self.otlp) if e is not None]

    def wait_sent(self, timeout: float | None, *, give_up_on_failure: bool = False) -> bool:
        """Wait until what reached the destinations so far is sent (see ``flush()``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        if self.http is not None:
            ok = self.http.wait_sent(timeout, give_up_on_failure=give_up_on_failure)
            if not ok:
                logger.info(
                    "lucidtrace: %d span(s) wait in the spool %s for the server %s",
                    self.http.stats.pending,
                    self.http.spool.directory,
                    self.http.endpoint,
                )
        if self.otlp is not None:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            ok = self.otlp.flush_sent(left) and ok
        return ok

    def report_left(self) -> None:
        """Say how many spans stay in the spool after a shutdown."""
        if self.http is None:
            return
        self.http.stop(timeout=0.5)
        pending = self.http.stats.pending
        if pending:
            logger.warning(
                "lucidtrace: %d span(s) were not acknowledged by the server %s yet; they stay "
                "in the spool %s and are sent after the next configure() with this spool",
                pending,
                self.http.endpoint,
                self.http.spool.directory,
            )

    def shutdown(self) -> None:
        """Close the destinations (when the configuration did not start)."""
        for exporter in self.exporters:
            exporter.shutdown()


def open_remote(settings: RemoteSettings) -> Remote | None:
    """Open the configured remote destinations; None (logged in one line) if one fails."""
    http: HttpSpanExporter | None = None
    otlp: OtlpDestination | None = None
    target = settings.endpoint
    try:
        if settings.endpoint is not None:
            from lucidtrace.tracer.http_export import HttpSpanExporter  # noqa: PLC0415

            http = HttpSpanExporter(
                settings.endpoint,
                api_key=settings.api_key,
                spool_dir=settings.spool_dir,
                spool_max_bytes=settings.spool_max_bytes,
            )
        target = settings.otlp_endpoint
        if settings.otlp_endpoint is not None:
            from lucidtrace.tracer._destinations import OtlpDestination  # noqa: PLC0415

            otlp = OtlpDestination(
                settings.otlp_endpoint,
                headers=settings.otlp_headers,
                max_queue_size=settings.max_queue_size,
                export_batch_size=settings.export_batch_size,
            )
    except (ImportError, OSError, ValueError) as exc:
        if http is not None:
            http.shutdown()
        hint = ""
        if isinstance(exc, OSError):
            hint = (
                f" (point {LUCIDTRACE_SPOOL_DIR} or configure(spool_dir=...) at a directory "
                "you can write to)"
            )
        logger.error(
            "lucidtrace: cannot send spans to %s: %s%s; tracing stays off", target, exc, hint
        )
        return None
    return Remote(http, otlp)
