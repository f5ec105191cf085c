"""The lucidtrace store: SQLAlchemy models, engine, migrations-aware opening, repository.

Open a store with :func:`create_engine` (SQLite or PostgreSQL), write spans with
:func:`ingest_spans`, read them with the repository functions (keyword-only, on a ``Session``,
scoped by project).
"""

from lucidtrace.store._listing import (
    ORDERS,
    FindingsBucket,
    SessionSummary,
    TracePage,
    count_sessions,
    findings_overview,
    list_sessions,
    list_trace_page,
)
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
from lucidtrace.store.otlp_json import export_trace_otlp
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
from lucidtrace.store.search import StepMatch, parse_query, search_steps

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_PROJECT_ID",
    "ORDERS",
    "AmbiguousTraceIdError",
    "FindingsBucket",
    "IngestResult",
    "SessionSummary",
    "SpanEvent",
    "SpanRecord",
    "StepMatch",
    "StoreError",
    "TraceDetail",
    "TraceNotFoundError",
    "TracePage",
    "TraceSummary",
    "TrailStep",
    "add_finding",
    "count_sessions",
    "count_traces",
    "create_engine",
    "delete_trace",
    "derive_trace",
    "display_url",
    "ensure_project",
    "ensure_schema",
    "export_trace",
    "export_trace_otlp",
    "find_trace_ids",
    "findings_overview",
    "get_trace",
    "ingest_spans",
    "list_sessions",
    "list_trace_page",
    "list_traces",
    "normalize_url",
    "parse_query",
    "recompute_verdict",
    "record_from_readable_span",
    "resolve_database_url",
    "resolve_trace_id",
    "search_steps",
]
