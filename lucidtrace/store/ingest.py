"""Ingest: the one path from OpenTelemetry spans to store rows.

Every way spans reach the store (the in-process :class:`~lucidtrace.tracer.exporters.
StoreSpanExporter`, the server's OTLP endpoint) builds :class:`SpanRecord` values and calls
:func:`ingest_spans`. The mapping itself is pure (:func:`derive_trace`): it reads the conventions
of :mod:`lucidtrace.store._readers` and derives each span's audit-trail steps and documents.

:func:`ingest_spans` writes one batch in one transaction:

1. spans are upserted on ``(project_id, span_id)``; a span's steps and documents are replaced, so
   storing the same spans twice leaves the same rows (``ingested_ns`` keeps the first ingest);
   a span whose id is stored under another trace is refused (:attr:`IngestResult.clashes`),
   never moved;
2. steps that another step of the trace supersedes are dropped (:mod:`lucidtrace.store._mapper`);
3. every touched trace is recomputed from its stored spans (times, counts, tokens, models, root,
   name, status, input/output, session, user, tags, metadata), so a span whose parent has not
   arrived yet is stored as it is and the trace is right once the parent lands, whatever the order
   of the batches.

Works on SQLite and PostgreSQL, with executemany-style inserts.
"""

from __future__ import annotations

import functools
import json
import operator
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from lucidtrace.store._aggregate import (
    RootSpan,
    aggregate_new_trace,
    chunks,
    recompute_traces,
    settle_steps,
    trace_row,
    trace_update,
    update_traces,
)
from lucidtrace.store._mapper import (
    PROBLEMS_KEY,
    MappedSpan,
    derive_span,
    derive_trace,
    derive_valid_span,
    screen_records,
)
from lucidtrace.store._records import SpanEvent, SpanRecord, record_from_readable_span
from lucidtrace.store.engine import SQLITE_BEGIN_OPTION
from lucidtrace.store.models import DEFAULT_PROJECT_ID, Base

__all__ = [
    "PROBLEMS_KEY",
    "IngestResult",
    "MappedSpan",
    "SpanEvent",
    "SpanRecord",
    "clash_message",
    "derive_span",
    "derive_trace",
    "ingest_spans",
    "record_from_readable_span",
]

_spans = Base.metadata.tables["spans"]
_steps = Base.metadata.tables["steps"]
_documents = Base.metadata.tables["documents"]
_traces = Base.metadata.tables["traces"]
_projects = Base.metadata.tables["projects"]
_SPAN_KEEP_ON_UPDATE = frozenset({"project_id", "span_id", "ingested_ns"})


@dataclass(frozen=True)
class IngestResult:
    """What one call to :func:`ingest_spans` stored.

    Attributes:
        spans: spans upserted.
        steps: steps written (before superseded ones were dropped).
        documents: documents written.
        trace_ids: the traces touched, recomputed.
        problems: spans stored with at least one problem (listed in their attributes under
            :data:`PROBLEMS_KEY`).
        rejected: one message per record that could not be stored (invalid trace or span id,
            a time beyond int64, a span id used by another trace of the batch or of the store).
        clashes: ``(span_id, trace_id, stored_trace_id)`` of each span refused because its id is
            already stored under another trace.
    """

    spans: int
    steps: int
    documents: int
    trace_ids: tuple[str, ...]
    problems: int
    rejected: tuple[str, ...] = ()
    clashes: tuple[tuple[str, str, str], ...] = ()


def ingest_spans(
    engine_or_connection: sa.Engine | sa.Connection,
    records: Iterable[SpanRecord],
    *,
    project_id: str = DEFAULT_PROJECT_ID,
) -> IngestResult:
    """Store span records (and what they imply) in one transaction.

    Args:
        engine_or_connection: an engine (a transaction is opened and committed) or a connection
            (its open transaction is used, or one is opened and committed).
        records: the spans; a later record with the span id of an earlier one of the same
            trace replaces it, one of another trace is refused (listed in ``rejected``), and
            so is one whose id is stored under another trace (listed in ``clashes`` too).
        project_id: the project the spans belong to (created when missing).
    """
    kept, _, refused = screen_records(records)
    rejected = [f"span {record.name!r:.80}: {why}" for record, why in refused]
    items = [derive_valid_span(record) for record in kept]
    clashes: list[tuple[str, str, str]] = []
    now = time.time_ns()
    with _transaction(engine_or_connection) as conn:
        stored = _stored_span_traces(conn, project_id, [item.span["span_id"] for item in items])
        if stored:
            # A span id names one span of a project: a span stored under another trace is not
            # moved (nor overwritten) by a span of this batch.
            moved = [
                item
                for item in items
                if stored.get(item.span["span_id"], item.span["trace_id"]) != item.span["trace_id"]
            ]
            for item in moved:
                span_id, trace_id = item.span["span_id"], item.span["trace_id"]
                clashes.append((span_id, trace_id, stored[span_id]))
                rejected.append(clash_message(span_id, stored[span_id]))
            if moved:
                refused_ids = {span_id for span_id, _, _ in clashes}
                items = [item for item in items if item.span["span_id"] not in refused_ids]
        trace_ids = tuple(sorted({item.span["trace_id"] for item in items}))
        if items:
            _write(conn, project_id, items, trace_ids, now, stored=set(stored))
    return IngestResult(
        spans=len(items),
        steps=sum(len(item.steps) for item in items),
        documents=sum(len(item.documents) for item in items),
        trace_ids=trace_ids,
        problems=sum(1 for item in items if item.problems),
        rejected=tuple(rejected),
        clashes=tuple(clashes),
    )


def clash_message(span_id: str, stored_trace_id: str) -> str:
    """Why a span whose id is stored under another trace is refused."""
    return (
        f"span id {span_id} is already stored under trace {stored_trace_id} in this project; "
        "a span id names one span: give this span a new id"
    )


@contextmanager
def _transaction(target: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    if isinstance(target, sa.Engine):
        # On SQLite, take the write lock up front: a transaction that reads first and writes
        # later cannot wait for another writer and would fail with "database is locked".
        options = {SQLITE_BEGIN_OPTION: "IMMEDIATE"}
        with target.connect().execution_options(**options) as conn, conn.begin():
            yield conn
    elif target.in_transaction():
        yield target
    else:
        with target.begin():
            yield target


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"lucidtrace stores spans in SQLite or PostgreSQL, not {name}")


def _write(
    conn: sa.Connection,
    project_id: str,
    items: list[MappedSpan],
    trace_ids: tuple[str, ...],
    now: int,
    *,
    stored: set[str],
) -> None:
    """Write ``items`` (``stored``: those of their span ids already stored, same trace)."""
    conn.execute(
        _insert(conn, _projects).on_conflict_do_nothing(),
        [{"id": project_id, "name": project_id, "created_ns": now}],
    )
    by_trace: dict[str, list[MappedSpan]] = {}
    for item in items:
        by_trace.setdefault(item.span["trace_id"], []).append(item)
    # Each trace's row as if the batch held all its spans: exactly right for the traces this
    # insert creates (they have no stored span yet), so those need no second pass. The insert
    # does nothing for traces already stored: those are locked (PostgreSQL), then recomputed
    # from what is stored once the batch is written.
    fresh = {
        trace_id: aggregate_new_trace(project_id, trace_id, by_trace[trace_id], now)
        for trace_id in trace_ids
    }
    created = set(
        conn.execute(
            _insert(conn, _traces)
            .on_conflict_do_nothing(index_elements=["project_id", "trace_id"])
            .returning(_traces.c.trace_id),
            [trace_row(update) for update, _ in fresh.values()],
        ).scalars()
    )
    known = [t for t in trace_ids if t not in created]
    for ids in chunks(known):
        conn.execute(
            sa.select(_traces.c.trace_id)
            .where(_traces.c.project_id == project_id, _traces.c.trace_id.in_(ids))
            .with_for_update()
        ).all()
    dropped: set[tuple[str, int]] = set()
    for trace_id in created:
        dropped |= fresh[trace_id][1]
    # A span can only be stored already if its trace was (the foreign key): spans of created
    # traces are plain inserts, the others upserts. Which of those are stored is asked first.
    new_spans = [item.span for item in items if item.span["trace_id"] in created]
    known_spans = [item.span for item in items if item.span["trace_id"] not in created]
    stored_ids = [span["span_id"] for span in known_spans if span["span_id"] in stored]
    constants = {"project_id": project_id, "ingested_ns": now}
    if new_spans:
        _insert_rows(conn, _spans, constants, new_spans)
    if known_spans:
        upsert = _insert(conn, _spans).values(constants)
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["project_id", "span_id"],
                set_={
                    c.name: upsert.excluded[c.name]
                    for c in _spans.columns
                    if c.name not in _SPAN_KEEP_ON_UPDATE
                },
            ),
            known_spans,
        )
    # Steps and documents of spans stored before are replaced (new spans have none).
    for table in (_steps, _documents):
        for ids in chunks(stored_ids):
            conn.execute(
                sa.delete(table).where(table.c.project_id == project_id, table.c.span_id.in_(ids))
            )
    step_rows = [row for item in items for row in item.steps]
    if dropped:
        step_rows = [row for row in step_rows if (row["span_id"], row["seq"]) not in dropped]
    if step_rows:
        _insert_rows(conn, _steps, {"project_id": project_id}, step_rows)
    doc_rows = [row for item in items for row in item.documents]
    if doc_rows:
        _insert_rows(conn, _documents, {"project_id": project_id}, doc_rows)
    if known:
        answers, deleted = settle_steps(conn, project_id, known)
        updates, full = _grown_traces(
            conn,
            project_id,
            {t: by_trace[t] for t in known},
            stored=set(stored_ids),
            answers=answers,
            deleted=deleted,
            now=now,
        )
        if full:
            updates.extend(recompute_traces(conn, project_id, full, now, answers))
        update_traces(conn, updates)


def _insert_rows(
    conn: sa.Connection, table: sa.Table, constants: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` (all of ``table``'s columns but ``constants``, which every row shares).

    On SQLite the rows go to the driver's ``executemany`` as tuples, with their JSON columns
    encoded as SQLAlchemy would (``json.dumps``): per row, that is a few C calls instead of
    SQLAlchemy's per-parameter processing, which cost as much as the mapping of the span. Other
    databases take SQLAlchemy's path (psycopg needs its JSONB wrappers).
    """
    if conn.dialect.name != "sqlite":
        conn.execute(sa.insert(table).values(constants), rows)
        return
    sql, plain, json_columns = _sqlite_insert(table, tuple(constants))
    head = tuple(constants.values())
    dumps = json.dumps
    if len(json_columns) == 1:
        (only,) = json_columns
        params = [(*head, *plain(row), dumps(row[only])) for row in rows]
    else:
        params = [
            (*head, *plain(row), *[dumps(row[name]) for name in json_columns]) for row in rows
        ]
    conn.exec_driver_sql(sql, params)


@functools.cache
def _sqlite_insert(
    table: sa.Table, constant_names: tuple[str, ...]
) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]], tuple[str, ...]]:
    """The SQL of :func:`_insert_rows` on SQLite and how to take a row's values in its order."""
    names = [c.name for c in table.columns if c.name not in constant_names]
    json_columns = tuple(n for n in names if isinstance(table.c[n].type, sa.JSON))
    plain_columns = [n for n in names if n not in json_columns]
    if len(plain_columns) < 2:  # itemgetter returns a tuple only for two names or more
        raise ValueError(f"{table.name}: too few columns for a batched insert")
    order = [*constant_names, *plain_columns, *json_columns]
    columns = ", ".join(f'"{name}"' for name in order)
    marks = ", ".join("?" for _ in order)
    sql = f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})'
    return sql, operator.itemgetter(*plain_columns), json_columns


def _stored_span_traces(
    conn: sa.Connection, project_id: str, span_ids: list[str]
) -> dict[str, str]:
    """The trace id of each of ``span_ids`` that is stored."""
    stored: dict[str, str] = {}
    for ids in chunks(span_ids):
        rows = conn.execute(
            sa.select(_spans.c.span_id, _spans.c.trace_id).where(
                _spans.c.project_id == project_id, _spans.c.span_id.in_(ids)
            )
        )
        stored.update((span_id, trace_id) for span_id, trace_id in rows)
    return stored


def _grown_traces(
    conn: sa.Connection,
    project_id: str,
    batch: dict[str, list[MappedSpan]],
    *,
    stored: set[str],
    answers: dict[str, str],
    deleted: dict[str, int],
    now: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """New rows of stored traces that this batch only added spans to, from their stored rows.

    A trace's row is its stored row plus the batch: times, counts and tokens add up, and the
    root, name, status, input, session, user, tags and metadata stay as they were when the batch
    cannot change them (its spans hang below the stored root and repeat the trace fields already
    stored). Looking that up costs a few indexed reads per trace, whatever its size.

    Returns:
        The rows computed so, and the traces that need a full recompute instead (a span stored
        again, a new root, a trace field the batch changes).
    """
    ids = list(batch)
    old: dict[str, Any] = {}
    row: Any
    for chunk in chunks(ids):
        for row in conn.execute(
            sa.select(_traces).where(
                _traces.c.project_id == project_id, _traces.c.trace_id.in_(chunk)
            )
        ):
            old[row.trace_id] = row
    roots: dict[str, Any] = {}
    root_ids = [row.root_span_id for row in old.values() if row.root_span_id is not None]
    for chunk in chunks(root_ids):
        for row in conn.execute(
            sa.select(
                _spans.c.span_id, _spans.c.parent_span_id, _spans.c.start_ns, _spans.c.output
            ).where(_spans.c.project_id == project_id, _spans.c.span_id.in_(chunk))
        ):
            roots[row.span_id] = row
    outside = {
        (item.span["trace_id"], item.span["parent_span_id"])
        for items in batch.values()
        for item in items
        if item.span["parent_span_id"] is not None
    }
    outside -= {
        (trace_id, item.span["span_id"]) for trace_id, items in batch.items() for item in items
    }
    parents = _stored_parents(conn, project_id, sorted(outside))
    updates: list[dict[str, Any]] = []
    full: list[str] = []
    for trace_id, items in batch.items():
        row = old.get(trace_id)
        root = roots.get(row.root_span_id) if row is not None else None
        update = None
        if (
            row is not None
            and root is not None
            and not any(item.span["span_id"] in stored for item in items)
        ):
            update = _grown_trace(
                row, root, items, parents=parents, answers=answers, deleted=deleted, now=now
            )
        if update is None:
            full.append(trace_id)
        else:
            updates.append(update)
    return updates, full


def _stored_parents(
    conn: sa.Connection, project_id: str, wanted: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which ``(trace_id, span_id)`` of ``wanted`` are stored spans."""
    found: set[tuple[str, str]] = set()
    span_ids = [span_id for _, span_id in wanted]
    for chunk in chunks(span_ids):
        found.update(
            (row.trace_id, row.span_id)
            for row in conn.execute(
                sa.select(_spans.c.trace_id, _spans.c.span_id).where(
                    _spans.c.project_id == project_id, _spans.c.span_id.in_(chunk)
                )
            )
        )
    return found


def _grown_trace(
    row: Any,
    root: Any,
    items: list[MappedSpan],
    *,
    parents: set[tuple[str, str]],
    answers: dict[str, str],
    deleted: dict[str, int],
    now: int,
) -> dict[str, Any] | None:
    """:func:`_grown_traces` for one trace, or None when it needs a full recompute."""
    trace_id = row.trace_id
    spans = [item.span for item in items]
    in_batch = {span["span_id"] for span in spans}
    if root.parent_span_id is not None and root.parent_span_id in in_batch:
        return None  # the stored root gets a parent: the trace has a new root
    root_key = (root.start_ns, root.span_id)
    for span in spans:
        parent = span["parent_span_id"]
        is_root = parent is None or (parent not in in_batch and (trace_id, parent) not in parents)
        if is_root and (span["start_ns"], span["span_id"]) < root_key:
            return None  # an earlier root arrived
    fields = {
        "name": row.name,
        "session_id": row.session_id,
        "user_id": row.user_id,
        "tags": list(row.tags or []),
        "metadata": dict(row.metadata or {}),
    }
    if not all(_keeps_fields(item.trace_fields, fields) for item in items if item.trace_fields):
        return None
    totals = (
        min(row.start_ns, *(span["start_ns"] for span in spans)),
        max(row.end_ns, *(span["end_ns"] for span in spans)),
        row.span_count + len(spans),
        row.input_tokens + sum(span["input_tokens"] or 0 for span in spans),
        row.output_tokens + sum(span["output_tokens"] or 0 for span in spans),
        row.reasoning_tokens + sum(span["reasoning_tokens"] or 0 for span in spans),
    )
    models = [*(row.models or []), *(span["model"] for span in spans if span["model"] is not None)]
    steps = row.step_count + sum(len(item.steps) for item in items) - deleted.get(trace_id, 0)
    return trace_update(
        row.project_id,
        trace_id,
        now,
        root=RootSpan(
            root.span_id,
            row.name,
            "error" if row.status == "error" else "ok",
            row.input,
            root.output,
        ),
        totals=totals,
        models=models,
        step_count=steps,
        fields=fields,
        last_answer=answers.get(trace_id),
    )


def _keeps_fields(found: dict[str, Any], merged: dict[str, Any]) -> bool:
    """Whether merging a span's trace fields into ``merged`` changes nothing, wherever it sorts.

    True when its scalars equal the merged ones, its tags are a prefix of the merged tags and its
    metadata is part of the merged metadata.
    """
    for name in ("session_id", "user_id", "name"):
        if name in found and found[name] != merged[name]:
            return False
    tags = list(found.get("tags", []))
    if tags != merged["tags"][: len(tags)]:
        return False
    metadata = merged["metadata"]
    return all(
        key in metadata and metadata[key] == value
        for key, value in found.get("metadata", {}).items()
    )
