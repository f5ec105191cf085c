"""Reading and writing the store: keyword-only functions on a SQLAlchemy ``Session``.

Every function is scoped by ``project_id`` (default: the embedded store's project), so a query
can never read or change another project's rows. Functions never commit: the caller owns the
transaction (``with Session(engine) as session, session.begin(): ...``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.store._listing import TraceSummary, count_traces, list_traces
from lucidtrace.store.errors import AmbiguousTraceIdError, TraceNotFoundError
from lucidtrace.store.models import (
    DEFAULT_PROJECT_ID,
    FINDING_STATUSES,
    Attribution,
    Base,
    CheckJob,
    Document,
    Finding,
    Project,
    Span,
    Step,
    Trace,
)

__all__ = [
    "TraceDetail",
    "TraceSummary",
    "TrailStep",
    "add_finding",
    "count_traces",
    "delete_trace",
    "ensure_project",
    "export_trace",
    "find_trace_ids",
    "get_trace",
    "list_traces",
    "recompute_verdict",
    "resolve_trace_id",
    "row_to_dict",
]

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class TrailStep:
    """A step of the audit trail with its position (``index``, starting at 1)."""

    index: int
    step: Step


@dataclass(frozen=True)
class TraceDetail:
    """A trace with everything recorded about it, each list in reading order."""

    trace: Trace
    spans: list[Span]
    steps: list[TrailStep]
    documents: list[Document]
    findings: list[Finding]


def ensure_project(
    session: Session, *, project_id: str = DEFAULT_PROJECT_ID, name: str | None = None
) -> Project:
    """The project with this id, created (named ``name`` or its id) when missing."""
    project = session.get(Project, project_id)
    if project is None:
        project = Project(id=project_id, name=name or project_id, created_ns=time.time_ns())
        session.add(project)
        session.flush()
    return project


def find_trace_ids(
    session: Session, *, project_id: str = DEFAULT_PROJECT_ID, prefix: str, limit: int = 10
) -> list[str]:
    """Sorted ids of traces whose id starts with ``prefix`` (hex, any case); ``limit`` at most."""
    prefix = prefix.strip().lower()
    if not prefix or not set(prefix) <= _HEX:
        return []
    query = (
        sa.select(Trace.trace_id)
        .where(Trace.project_id == project_id, Trace.trace_id.startswith(prefix, autoescape=True))
        .order_by(Trace.trace_id)
        .limit(limit)
    )
    return list(session.scalars(query))


LATEST = "latest"
"""The trace reference that names the most recently started trace."""


def resolve_trace_id(session: Session, *, project_id: str = DEFAULT_PROJECT_ID, ref: str) -> str:
    """The one trace id that ``ref`` names: a full id, a unique prefix of one, or ``latest``.

    ``latest`` is the trace that started last (no trace id can be spelt so: ids are hex).

    Raises:
        TraceNotFoundError: No trace matches.
        AmbiguousTraceIdError: The prefix matches several traces.
    """
    shown = " ".join(ref.split())[:64]
    if ref == LATEST:
        latest = session.scalar(
            sa.select(Trace.trace_id)
            .where(Trace.project_id == project_id)
            .order_by(Trace.start_ns.desc().nulls_last(), Trace.trace_id.desc())
            .limit(1)
        )
        if latest is None:
            raise TraceNotFoundError(f"project {project_id!r} holds no trace yet")
        return latest
    matches = find_trace_ids(session, project_id=project_id, prefix=ref, limit=3)
    if not matches:
        raise TraceNotFoundError(
            f"no trace with id {shown!r} in project {project_id!r}: list the traces to find its id"
        )
    if len(matches) > 1:
        sample = ", ".join(match[: len(ref) + 4] + "..." for match in matches[:2])
        raise AmbiguousTraceIdError(
            f"trace id prefix {shown!r} matches several traces ({sample}): type more of the id"
        )
    return matches[0]


def get_trace(
    session: Session, *, project_id: str = DEFAULT_PROJECT_ID, trace_id: str
) -> TraceDetail | None:
    """A trace with its spans, audit trail, documents and findings, or None when unknown."""
    trace = session.get(Trace, (project_id, trace_id))
    if trace is None:
        return None
    in_trace = (Span.project_id == project_id, Span.trace_id == trace_id)
    spans = list(
        session.scalars(sa.select(Span).where(*in_trace).order_by(Span.start_ns, Span.span_id))
    )
    steps = session.scalars(
        sa.select(Step)
        .where(Step.project_id == project_id, Step.trace_id == trace_id)
        .order_by(Step.ts_ns, Step.span_id, Step.seq)
    )
    span_order = {span.span_id: position for position, span in enumerate(spans)}
    documents = sorted(
        session.scalars(
            sa.select(Document).where(
                Document.project_id == project_id, Document.trace_id == trace_id
            )
        ),
        key=lambda doc: (span_order.get(doc.span_id, len(spans)), doc.span_id, doc.rank),
    )
    findings = session.scalars(
        sa.select(Finding)
        .where(Finding.project_id == project_id, Finding.trace_id == trace_id)
        .order_by(Finding.created_ns, Finding.id)
    )
    return TraceDetail(
        trace=trace,
        spans=spans,
        steps=[TrailStep(index, step) for index, step in enumerate(steps, start=1)],
        documents=documents,
        findings=list(findings),
    )


def export_trace(
    session: Session, *, project_id: str = DEFAULT_PROJECT_ID, trace_id: str
) -> dict[str, Any] | None:
    """A trace as one JSON-serialisable document with keys trace, spans, steps, documents, findings.

    Each row carries all of its columns (``metadata`` under its column name); steps carry their
    ``index`` too. Returns None when the trace is unknown.
    """
    detail = get_trace(session, project_id=project_id, trace_id=trace_id)
    if detail is None:
        return None
    return {
        "trace": row_to_dict(detail.trace),
        "spans": [row_to_dict(span) for span in detail.spans],
        "steps": [{"index": entry.index, **row_to_dict(entry.step)} for entry in detail.steps],
        "documents": [row_to_dict(doc) for doc in detail.documents],
        "findings": [row_to_dict(finding) for finding in detail.findings],
    }


def add_finding(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    trace_id: str,
    check_name: str,
    check_version: str,
    status: str,
    score: float | None = None,
    threshold: float | None = None,
    message: str | None = None,
    evidence: dict[str, Any] | None = None,
    model_id: str | None = None,
    weights_hash: str | None = None,
    proxy: bool = False,
    step_span_id: str | None = None,
    step_seq: int | None = None,
    created_ns: int | None = None,
) -> Finding:
    """Record one check's result on a trace (or one of its steps) and update the trace's verdict.

    Raises:
        ValueError: ``status`` is not one of ``FINDING_STATUSES``.
        TraceNotFoundError: The trace does not exist in the project.
    """
    if status not in FINDING_STATUSES:
        raise ValueError(f"unknown finding status {status!r}: use one of {FINDING_STATUSES}")
    if session.get(Trace, (project_id, trace_id)) is None:
        raise TraceNotFoundError(f"no trace with id {trace_id!r} in project {project_id!r}")
    finding = Finding(
        project_id=project_id,
        trace_id=trace_id,
        step_span_id=step_span_id,
        step_seq=step_seq,
        check_name=check_name,
        check_version=check_version,
        status=status,
        score=score,
        threshold=threshold,
        message=message,
        evidence=evidence or {},
        model_id=model_id,
        weights_hash=weights_hash,
        proxy=proxy,
        created_ns=created_ns if created_ns is not None else time.time_ns(),
    )
    session.add(finding)
    session.flush()
    recompute_verdict(session, project_id=project_id, trace_id=trace_id)
    return finding


def recompute_verdict(
    session: Session, *, project_id: str = DEFAULT_PROJECT_ID, trace_id: str
) -> str:
    """Set a trace's verdict from its findings and return it.

    ``flagged`` when any finding is flagged; ``clear`` when at least one check passed and none
    flagged; ``unchecked`` otherwise: with no findings, or only inconclusive or failed checks, a
    trace has not been shown to be clear.
    """
    trace = session.get(Trace, (project_id, trace_id))
    if trace is None:
        raise TraceNotFoundError(f"no trace with id {trace_id!r} in project {project_id!r}")
    statuses = set(
        session.scalars(
            sa.select(Finding.status)
            .where(Finding.project_id == project_id, Finding.trace_id == trace_id)
            .distinct()
        )
    )
    if "flagged" in statuses:
        verdict = "flagged"
    elif "passed" in statuses:
        verdict = "clear"
    else:
        verdict = "unchecked"
    if trace.verdict != verdict:
        trace.verdict = verdict
        trace.updated_ns = time.time_ns()
        session.flush()
    return verdict


def delete_trace(session: Session, *, project_id: str = DEFAULT_PROJECT_ID, trace_id: str) -> bool:
    """Delete a trace and everything recorded about it; False when there was no such trace."""
    if session.get(Trace, (project_id, trace_id)) is None:
        return False
    # Children are deleted explicitly rather than through ON DELETE CASCADE, so the result does
    # not depend on a SQLite connection having foreign keys switched on.
    models: Sequence[type[Attribution | Finding | Document | Step | Span | CheckJob | Trace]] = (
        Attribution,
        Finding,
        Document,
        Step,
        Span,
        CheckJob,
        Trace,
    )
    for model in models:
        session.execute(
            sa.delete(model).where(model.project_id == project_id, model.trace_id == trace_id)
        )
    session.expire_all()
    return True


def row_to_dict(row: Base) -> dict[str, Any]:
    """A model row as a JSON-serialisable dict keyed by column name (NaN and infinities as None)."""
    values: dict[str, Any] = {}
    for attr in sa.inspect(type(row)).column_attrs:
        value = getattr(row, attr.key)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        values[attr.columns[0].name] = value
    return values
