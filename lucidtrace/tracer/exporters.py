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
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from lucidtrace.store.ingest import SpanRecord

__all__ = ["StoreSpanExporter"]

logger = logging.getLogger("lucidtrace")

DEFAULT_PROJECT_ID = "default"
"""The project of the embedded store (the same value as ``lucidtrace.store.DEFAULT_PROJECT_ID``,
repeated here so that importing the exporter does not import the store)."""

RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4)
"""Waits before each retry of a batch after a transient database error (then: FAILURE)."""

_TRANSIENT_SQLITE = ("database is locked", "database is busy", "database table is locked")


def is_transient(exc: BaseException) -> bool:
    """Whether a database error may go away on retry (a lock, a dropped connection)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        original = exc.orig if exc.orig is not None else exc
        if type(original).__module__.startswith("sqlite3"):
            text = str(original).lower()
            return any(marker in text for marker in _TRANSIENT_SQLITE)
        # PostgreSQL: server restart, dropped or refused connection, failover, deadlock.
        return True
    return isinstance(exc, sa.exc.DisconnectionError | sa.exc.TimeoutError)


class StoreSpanExporter(SpanExporter):
    """Export finished spans into a lucidtrace store (SQLite or PostgreSQL).

    Each :meth:`export` call is stored in one transaction; storing the same spans again changes
    nothing. Transient database errors are retried with a short, bounded backoff
    (:data:`RETRY_DELAYS_S`). Failures are logged on the ``lucidtrace`` logger and reported as
    ``FAILURE``; nothing is raised.

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

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Store ``spans``; SUCCESS once committed, FAILURE otherwise (logged)."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            from lucidtrace.store.ingest import ingest_spans  # noqa: PLC0415 - light import

            records = self._records(spans)
            engine = self._get_engine()
        except Exception:
            logger.warning("lucidtrace: cannot export %d span(s)", len(spans), exc_info=True)
            return SpanExportResult.FAILURE
        for attempt in range(len(RETRY_DELAYS_S) + 1):
            try:
                result = ingest_spans(engine, records, project_id=self._project_id)
            except Exception as exc:
                if attempt < len(RETRY_DELAYS_S) and is_transient(exc) and not self._shutdown:
                    time.sleep(RETRY_DELAYS_S[attempt])
                    continue
                logger.warning(
                    "lucidtrace: storing %d span(s) failed after %d attempt(s)",
                    len(records),
                    attempt + 1,
                    exc_info=True,
                )
                return SpanExportResult.FAILURE
            if result.rejected:
                logger.warning("lucidtrace: spans rejected: %s", "; ".join(result.rejected))
            return SpanExportResult.SUCCESS
        return SpanExportResult.FAILURE  # pragma: no cover - the loop always returns

    def _records(self, spans: Sequence[ReadableSpan]) -> list[SpanRecord]:
        from lucidtrace.store.ingest import record_from_readable_span  # noqa: PLC0415

        records = []
        for span in spans:
            try:
                records.append(record_from_readable_span(span))
            except Exception:
                logger.warning("lucidtrace: dropped unreadable span %r", span.name, exc_info=True)
        return records

    def _get_engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                from lucidtrace.store.engine import create_engine  # noqa: PLC0415 - lazy

                self._engine = create_engine(self._database_url)
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
