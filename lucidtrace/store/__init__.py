"""The lucidtrace store: SQLAlchemy models, engine, migrations-aware opening, repository.

Open a store with :func:`create_engine` (SQLite or PostgreSQL), write spans with
:func:`ingest_spans`, read them with the repository functions (keyword-only, on a ``Session``,
scoped by project).
"""

from lucidtrace.store.engine import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    create_engine,
    display_url,
    ensure_schema,
    normalize_url,
    resolve_database_url,
)
from lucidtrace.store.errors import AmbiguousTraceIdError, StoreError, TraceNotFoundError
from lucidtrace.store.ingest import (
    IngestResult,
    SpanEvent,
    SpanRecord,
    derive_trace,
    ingest_spans,
    record_from_readable_span,
)
from lucidtrace.store.models import DEFAULT_PROJECT_ID
from lucidtrace.store.repository import (
    TraceDetail,
    TraceSummary,
    TrailStep,
    add_finding,
    count_traces,
    delete_trace,
    ensure_project,
    export_trace,
    find_trace_ids,
    get_trace,
    list_traces,
    recompute_verdict,
    resolve_trace_id,
)

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PROJECT_ID",
    "AmbiguousTraceIdError",
    "IngestResult",
    "SpanEvent",
    "SpanRecord",
    "StoreError",
    "TraceDetail",
    "TraceNotFoundError",
    "TraceSummary",
    "TrailStep",
    "add_finding",
    "count_traces",
    "create_engine",
    "delete_trace",
    "derive_trace",
    "display_url",
    "ensure_project",
    "ensure_schema",
    "export_trace",
    "find_trace_ids",
    "get_trace",
    "ingest_spans",
    "list_traces",
    "normalize_url",
    "recompute_verdict",
    "record_from_readable_span",
    "resolve_database_url",
    "resolve_trace_id",
]
