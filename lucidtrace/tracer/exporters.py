"""Span exporters that write to a lucidtrace store.

:class:`StoreSpanExporter` is the in-process path of the design: finished spans go through the
ingest mapper (:func:`lucidtrace.store.ingest.ingest_spans`) straight into SQLite or PostgreSQL.
It is meant to sit behind a batching span processor, which calls it off the agent's thread.

Importing this module is light (OpenTelemetry SDK and SQLAlchemy only): the store is imported and
the engine created on the first export.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from lucidtrace.tracer._log import log_once

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from lucidtrace.store.ingest import SpanRecord

__all__ = ["StoreSpanExporter"]

logger = logging.getLogger("lucidtrace")

MAX_REASON_CHARS = 300
"""Longest reason a failure's log line quotes from the database error."""

DEFAULT_PROJECT_ID = "default"
"""The project of the embedded store (the same value as ``lucidtrace.store.DEFAULT_PROJECT_ID``,
repeated here so that importing the exporter does not import the store)."""


class StoreSpanExporter(SpanExporter):
    """Export finished spans into a lucidtrace store (SQLite or PostgreSQL).

    Each :meth:`export` call is stored in one transaction; storing the same spans again changes
    nothing. Transient database errors are retried with a short, bounded backoff, and a batch
    the database refuses is stored again trace by trace, then span by span
    (:func:`lucidtrace.store.fallback.ingest_with_fallback`). Failures are logged on the
    ``lucidtrace`` logger and reported as ``FAILURE``; nothing is raised.

    Args:
        database_url: the store to open (see :func:`lucidtrace.store.engine.resolve_database_url`
            for the default); ignored when ``engine`` is given.
        engine: an engine to write through instead (its owner disposes of it).
        project_id: the project the spans are stored under.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        engine: sa.Engine | None = None,
        project_id: str = DEFAULT_PROJECT_ID,
    ) -> None:
        self._database_url = database_url
        self._engine = engine
        self._owns_engine = engine is None
        self._project_id = project_id
        self._lock = threading.Lock()
        self._shutdown = False

    def open(self) -> None:
        """Open the store now (and create or migrate the embedded one): fail early, not later.

        Raises:
            lucidtrace.store.errors.StoreError: the store cannot be opened or used; the message
                is one line saying why.
        """
        self._get_engine()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Store ``spans``; SUCCESS once all are committed, FAILURE otherwise (logged)."""
        _, failed = self.export_counted(spans)
        return SpanExportResult.FAILURE if failed else SpanExportResult.SUCCESS

    def export_counted(self, spans: Sequence[ReadableSpan]) -> tuple[int, int]:
        """Store ``spans`` and say how many were stored and how many were lost.

        A batch that fails for an error that retrying cannot fix (a value the database refuses)
        is stored again trace by trace, then the failing trace span by span, so only the
        offending spans are lost; each failure is logged once per kind, in one line.
        """
        if self._shutdown:
            return 0, len(spans)
        if not spans:
            return 0, 0
        try:
            records = self._records(spans)
            engine = self._get_engine()
        except Exception as exc:
            _log_failure("open", exc, len(spans), 1)
            return 0, len(spans)
        unreadable = len(spans) - len(records)
        stored, failed = self._store(engine, records)
        if stored:
            from lucidtrace.probes.checks.runner import check_exported  # noqa: PLC0415 - lazy

            check_exported(engine, project_id=self._project_id, records=records)
        return stored, failed + unreadable

    def _store(self, engine: sa.Engine, records: list[SpanRecord]) -> tuple[int, int]:
        from lucidtrace.store.fallback import ingest_with_fallback  # noqa: PLC0415 - light import

        result = ingest_with_fallback(
            engine, records, project_id=self._project_id, stopping=lambda: self._shutdown
        )
        if result.rejected:
            log_once(
                "export-rejected",
                "lucidtrace: spans rejected: %s",
                "; ".join(f"span {r.name!r:.80}: {why}" for r, why in result.rejected)[:500],
            )
        for group in result.failed:
            _log_failure("store", group.error, len(group.records), group.attempts)
        return len(result.stored), result.failed_count

    def _records(self, spans: Sequence[ReadableSpan]) -> list[SpanRecord]:
        from lucidtrace.store.ingest import record_from_readable_span  # noqa: PLC0415

        records = []
        for span in spans:
            try:
                records.append(record_from_readable_span(span))
            except Exception as exc:
                _log_failure("read", exc, 1, 1)
        return records

    def _get_engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                from lucidtrace.store.engine import create_engine  # noqa: PLC0415 - lazy
                from lucidtrace.store.errors import (  # noqa: PLC0415 - lazy
                    StoreError,
                    describe_database_error,
                )

                try:
                    self._engine = create_engine(self._database_url)
                except sa.exc.SQLAlchemyError as exc:
                    raise StoreError(describe_database_error(exc, "the store")) from None
            return self._engine

    def shutdown(self) -> None:
        """Stop exporting and dispose of the engine this exporter created."""
        self._shutdown = True
        with self._lock:
            if self._engine is not None and self._owns_engine:
                self._engine.dispose()
                self._engine = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: every export is committed before it returns."""
        return True


def failure_reason(exc: BaseException) -> str:
    """One short line saying why a database call failed, without SQL text or parameters.

    SQLAlchemy's message carries the statement and its parameters (whole span values); only the
    driver's own message is kept, on one line and cut to :data:`MAX_REASON_CHARS`.
    """
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split()) or type(original).__name__
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 3] + "..."
    return f"{type(original).__name__}: {text}"


def _log_failure(stage: str, exc: BaseException, count: int, attempts: int) -> None:
    """Log a failure once per kind (stage and error type), in one line."""
    original = getattr(exc, "orig", None) or exc
    what = {
        "open": "cannot export {count} span(s): the store cannot be opened",
        "read": "cannot export {count} span(s): a finished span cannot be read",
        "store": "storing {count} span(s) failed after {attempts} attempt(s)",
    }[stage].format(count=count, attempts=attempts)
    log_once(
        f"export-{stage}:{type(original).__module__}.{type(original).__qualname__}",
        "lucidtrace: %s; they are lost (counted in get_stats()): %s",
        what,
        failure_reason(exc),
    )
