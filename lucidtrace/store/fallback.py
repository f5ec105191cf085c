"""Storing a batch so that one bad span costs only itself.

:func:`ingest_with_fallback` is how every writer that reports per span (the in-process
``StoreSpanExporter``, the server's ingest endpoints) calls :func:`~lucidtrace.store.ingest.
ingest_spans`: the batch is stored in one transaction, transient errors (a lock, a dropped
connection) are retried with a short bounded backoff, and a batch the database refuses for good
(a value it cannot store) is stored again trace by trace, then the failing trace span by span.
Records whose ids or times cannot be stored are refused before anything is written.

Span ids within one batch (:func:`~lucidtrace.store._mapper.split_duplicates`): a later record
with the span id of an earlier one of the same trace replaces it (the earlier one is reported
as replaced, not refused); one of another trace is refused ("span id ... is already used by
trace ... in this request"). A span whose id is already stored under another trace is refused
too ("span id ... is already stored under trace ..."), and the rest of the batch is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from lucidtrace.store import ingest as _ingest
from lucidtrace.store._mapper import screen_records
from lucidtrace.store._records import SpanRecord
from lucidtrace.store.models import DEFAULT_PROJECT_ID

__all__ = [
    "RETRY_DELAYS_S",
    "FailedGroup",
    "FallbackResult",
    "ingest_with_fallback",
    "is_transient",
]

RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4)
"""Waits before each retry of a batch after a transient database error."""

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


@dataclass(frozen=True)
class FailedGroup:
    """Records that could not be stored together, and why.

    Attributes:
        records: The records lost.
        error: The last error.
        attempts: How many times the group was tried.
        transient: Whether the error may go away on retry (the client may send them again).
    """

    records: tuple[SpanRecord, ...]
    error: Exception
    attempts: int
    transient: bool


@dataclass
class FallbackResult:
    """What :func:`ingest_with_fallback` did with each record.

    Attributes:
        stored: Records committed.
        failed: Groups of records the database did not store.
        rejected: Records refused, with the reason (ids or times that cannot be stored, a span
            id used by another trace in the batch or in the store).
        replaced: Records a later record of the batch with the same span and trace id replaced
            (that later one is what is stored).
    """

    stored: list[SpanRecord] = field(default_factory=list)
    failed: list[FailedGroup] = field(default_factory=list)
    rejected: list[tuple[SpanRecord, str]] = field(default_factory=list)
    replaced: list[SpanRecord] = field(default_factory=list)

    @property
    def trace_ids(self) -> list[str]:
        """The traces of the stored records, sorted."""
        return sorted({record.trace_id for record in self.stored})

    @property
    def failed_count(self) -> int:
        """How many records were not stored (failed or rejected)."""
        return sum(len(group.records) for group in self.failed) + len(self.rejected)


def ingest_with_fallback(
    engine: sa.Engine,
    records: Sequence[SpanRecord],
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    retry_delays: Sequence[float] = RETRY_DELAYS_S,
    stopping: Callable[[], bool] | None = None,
) -> FallbackResult:
    """Store ``records``, isolating the ones the database refuses.

    Args:
        engine: The store.
        records: The spans.
        project_id: Their project.
        retry_delays: Waits before each retry of a transient error.
        stopping: Returns True when retries should stop (shutdown).
    """
    result = FallbackResult()
    valid, result.replaced, refused = screen_records(records)
    result.rejected.extend(refused)
    if valid:
        _store(
            engine,
            valid,
            project_id=project_id,
            retry_delays=retry_delays,
            stopping=stopping,
            result=result,
        )
    return result


def _store(
    engine: sa.Engine,
    records: list[SpanRecord],
    *,
    project_id: str,
    retry_delays: Sequence[float],
    stopping: Callable[[], bool] | None,
    result: FallbackResult,
) -> None:
    error, attempts, clashes = _attempt(engine, records, project_id, retry_delays, stopping)
    if error is None:
        refused = {span_id: stored_trace for span_id, _, stored_trace in clashes}
        for record in records:
            stored_trace = refused.get(record.span_id.lower())
            if stored_trace is None:
                result.stored.append(record)
            else:
                result.rejected.append(
                    (record, _ingest.clash_message(record.span_id.lower(), stored_trace))
                )
        return
    transient = is_transient(error)
    if transient or len(records) == 1:
        result.failed.append(FailedGroup(tuple(records), error, attempts, transient))
        return
    groups: dict[str, list[SpanRecord]] = {}
    for item in records:
        groups.setdefault(item.trace_id, []).append(item)
    parts = list(groups.values()) if len(groups) > 1 else [[item] for item in records]
    for part in parts:
        _store(
            engine,
            part,
            project_id=project_id,
            retry_delays=retry_delays,
            stopping=stopping,
            result=result,
        )


def _attempt(
    engine: sa.Engine,
    records: list[SpanRecord],
    project_id: str,
    retry_delays: Sequence[float],
    stopping: Callable[[], bool] | None,
) -> tuple[Exception | None, int, tuple[tuple[str, str, str], ...]]:
    """Store ``records`` in one transaction, retrying transient errors.

    Returns:
        The error (None once stored), the number of attempts made, and the spans refused
        because their id is stored under another trace (:attr:`IngestResult.clashes`).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            # Looked up on each call, so that tests can stand in for the database.
            stored = _ingest.ingest_spans(engine, records, project_id=project_id)
        except Exception as exc:
            retry = attempt <= len(retry_delays) and is_transient(exc)
            if retry and not (stopping is not None and stopping()):
                time.sleep(retry_delays[attempt - 1])
                continue
            return exc, attempt, ()
        return None, attempt, stored.clashes
