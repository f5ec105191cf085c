"""Several destinations behind lucidtrace's one processor: store, server, OTLP, user exporter.

lucidtrace's processor masks every span before an exporter sees it, so every destination hangs
off it: :class:`FanoutSpanExporter` hands each masked batch to each destination in turn. The
store and the server spool write locally and return quickly; the OTLP destination hands spans to
an OpenTelemetry ``BatchSpanProcessor`` whose own thread does the network I/O.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from lucidtrace.tracer._log import log_once

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

OTLP_EXTRA_HINT = (
    "the OTLP destination needs the OpenTelemetry OTLP/HTTP exporter: "
    "pip install 'lucidtrace[server]' (or opentelemetry-exporter-otlp-proto-http)"
)


def _counted(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> tuple[int, int]:
    counted = getattr(exporter, "export_counted", None)
    try:
        if counted is not None:
            stored, failed = counted(spans)
            return int(stored), int(failed)
        result = exporter.export(spans)
    except Exception:
        log_once(
            f"fanout-export:{type(exporter).__name__}",
            "lucidtrace: the exporter %s raised; %d span(s) did not reach it",
            type(exporter).__name__,
            len(spans),
            exc_info=True,
        )
        return 0, len(spans)
    if result is SpanExportResult.SUCCESS:
        return len(spans), 0
    return 0, len(spans)


class FanoutSpanExporter(SpanExporter):
    """Export each batch to several exporters; a span counts as lost if any destination lost it.

    Args:
        exporters: The destinations, in the order they are called.
    """

    def __init__(self, exporters: Sequence[SpanExporter]) -> None:
        self.exporters = tuple(exporters)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export to every destination; FAILURE when one of them lost spans."""
        _, failed = self.export_counted(spans)
        return SpanExportResult.FAILURE if failed else SpanExportResult.SUCCESS

    def export_counted(self, spans: Sequence[ReadableSpan]) -> tuple[int, int]:
        """Export to every destination: (spans every destination took, spans lost somewhere)."""
        failed = 0
        for exporter in self.exporters:
            failed = max(failed, _counted(exporter, spans)[1])
        return len(spans) - failed, failed

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush every destination."""
        ok = True
        for exporter in self.exporters:
            try:
                ok = exporter.force_flush(timeout_millis) and ok
            except Exception:
                ok = False
        return ok

    def shutdown(self) -> None:
        """Shut every destination down (one that raises does not stop the others)."""
        for exporter in self.exporters:
            try:
                exporter.shutdown()
            except Exception:
                log_once(
                    f"fanout-shutdown:{type(exporter).__name__}",
                    "lucidtrace: shutting down %s failed",
                    type(exporter).__name__,
                    exc_info=True,
                )


class OtlpDestination(SpanExporter):
    """Forward masked spans to an OTLP/HTTP backend through a ``BatchSpanProcessor``.

    ``export()`` only queues (the processor's thread sends), so lucidtrace's worker never waits
    on the collector. Spans the ``BatchSpanProcessor`` cannot queue or send are reported by
    OpenTelemetry's own logging, as with any OTLP exporter.

    Args:
        endpoint: The collector's base URL (``http://collector:4318``) or its full traces URL
            (``.../v1/traces``).
        headers: Extra HTTP headers (an ``Authorization`` header, say).
        max_queue_size: Most spans the ``BatchSpanProcessor`` holds.
        export_batch_size: Spans per OTLP request.

    Raises:
        ImportError: The OTLP exporter is not installed (the message names the extra).
        ValueError: ``endpoint`` is not an http(s) URL.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_queue_size: int = 100_000,
        export_batch_size: int = 512,
    ) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
        except ImportError as exc:
            raise ImportError(f"{OTLP_EXTRA_HINT} ({exc})") from exc
        self.url = otlp_traces_url(endpoint)
        self.processor: BatchSpanProcessor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=self.url, headers=dict(headers or {})),
            max_queue_size=max_queue_size,
            max_export_batch_size=min(export_batch_size, max_queue_size),
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Queue ``spans`` for the OTLP exporter's thread."""
        on_end = self.processor.on_end
        for span in spans:
            on_end(span)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Queued spans are sent by :meth:`flush_sent`, which ``lucidtrace.flush()`` calls."""
        return True

    def flush_sent(self, timeout: float | None) -> bool:
        """Send what is queued; False when ``timeout`` seconds pass or the collector failed."""
        millis = 30_000 if timeout is None else max(int(timeout * 1000), 1)
        return bool(self.processor.force_flush(millis))

    def shutdown(self) -> None:
        """Send what is queued (bounded by the OTLP exporter's timeout) and stop."""
        self.processor.shutdown()  # type: ignore[no-untyped-call]


def otlp_traces_url(endpoint: str) -> str:
    """``endpoint`` with ``/v1/traces`` appended unless it already names a path.

    Raises:
        ValueError: ``endpoint`` is not an http(s) URL.
    """
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        msg = f"otlp_endpoint must be an http:// or https:// URL, got {endpoint!r}"
        raise ValueError(msg)
    if parsed.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def parse_headers(raw: str) -> dict[str, str]:
    """Headers from ``key=value,key2=value2`` (the form of ``OTEL_EXPORTER_OTLP_HEADERS``).

    Raises:
        ValueError: An entry has no ``=``.
    """
    headers: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            msg = f"a header must look like key=value, got {item.strip()!r}"
            raise ValueError(msg)
        headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return headers
