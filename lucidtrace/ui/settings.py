"""Server settings: flags of ``lucidtrace serve`` over ``LUCIDTRACE_*`` variables over defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerSettings"]


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
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_spans_per_request: int = 10_000
    max_attributes_per_span: int = 1_000
    max_attribute_depth: int = 16
    max_concurrent_ingest: int = 8
    retry_after_seconds: int = 1
    ingest_checks: bool = False
