"""Trace lists: filters, order and summaries; re-exported by :mod:`lucidtrace.store.repository`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from lucidtrace.store.models import DEFAULT_PROJECT_ID, Trace

__all__ = ["TraceSummary", "count_traces", "list_traces"]

_DURATION = Trace.end_ns - Trace.start_ns
_ORDERS: dict[str, Any] = {
    "start": Trace.start_ns,
    "duration": _DURATION,
    "name": Trace.name,
    "steps": Trace.step_count,
}


@dataclass(frozen=True)
class TraceSummary:
    """One row of a trace list."""

    trace_id: str
    name: str | None
    start_ns: int | None
    end_ns: int | None
    duration_ns: int | None
    step_count: int
    span_count: int
    status: str
    verdict: str
    session_id: str | None
    user_id: str | None
    tags: list[Any] = field(default_factory=list)
    models: list[Any] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-serialisable values."""
        return asdict(self)


def list_traces(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    limit: int = 50,
    offset: int = 0,
    status: str | None = None,
    verdict: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    order: str = "-start",
) -> list[TraceSummary]:
    """Traces matching every given filter, newest first by default.

    Args:
        session: An open session.
        project_id: The project to read.
        limit: At most this many traces.
        offset: Skip this many first.
        status: Trace status (``unset``, ``ok``, ``error``).
        verdict: ``unchecked``, ``clear`` or ``flagged``.
        session_id: Only this session's traces.
        user_id: Only this user's traces.
        tag: Only traces carrying this tag.
        name: Only traces whose name contains this text (case-insensitive).
        since_ns: Only traces that started at or after this time.
        until_ns: Only traces that started before this time.
        order: ``start``, ``duration``, ``name`` or ``steps``; a leading ``-`` sorts descending.
    """
    descending = order.startswith("-")
    key = _ORDERS.get(order.lstrip("-"))
    if key is None:
        raise ValueError(
            f"unknown order {order!r}: use one of {sorted(_ORDERS)} (prefix - to reverse)"
        )
    filters = _filters(
        session,
        project_id=project_id,
        status=status,
        verdict=verdict,
        session_id=session_id,
        user_id=user_id,
        tag=tag,
        name=name,
        since_ns=since_ns,
        until_ns=until_ns,
    )
    sort = sa.nulls_last(key.desc() if descending else key.asc())
    query = (
        sa.select(Trace)
        .where(*filters)
        .order_by(sort, Trace.trace_id)
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    return [_summary(trace) for trace in session.scalars(query)]


def count_traces(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    status: str | None = None,
    verdict: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> int:
    """How many traces :func:`list_traces` would find with these filters and no limit."""
    filters = _filters(
        session,
        project_id=project_id,
        status=status,
        verdict=verdict,
        session_id=session_id,
        user_id=user_id,
        tag=tag,
        name=name,
        since_ns=since_ns,
        until_ns=until_ns,
    )
    query = sa.select(sa.func.count()).select_from(Trace).where(*filters)
    return int(session.scalar(query) or 0)


def _filters(
    session: Session,
    *,
    project_id: str,
    status: str | None,
    verdict: str | None,
    session_id: str | None,
    user_id: str | None,
    tag: str | None,
    name: str | None,
    since_ns: int | None,
    until_ns: int | None,
) -> list[sa.ColumnElement[bool]]:
    filters: list[sa.ColumnElement[bool]] = [Trace.project_id == project_id]
    equal = {
        Trace.status: status,
        Trace.verdict: verdict,
        Trace.session_id: session_id,
        Trace.user_id: user_id,
    }
    filters.extend(column == value for column, value in equal.items() if value is not None)
    if tag is not None:
        filters.append(_has_tag(session, tag))
    if name:
        filters.append(Trace.name.icontains(name, autoescape=True))
    if since_ns is not None:
        filters.append(Trace.start_ns >= since_ns)
    if until_ns is not None:
        filters.append(Trace.start_ns < until_ns)
    return filters


def _has_tag(session: Session, tag: str) -> sa.ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return sa.type_coerce(Trace.tags, postgresql.JSONB).contains([tag])
    values = sa.func.json_each(Trace.tags).table_valued("value")
    return sa.exists().select_from(values).where(values.c.value == tag)


def _summary(trace: Trace) -> TraceSummary:
    duration = (
        trace.end_ns - trace.start_ns
        if trace.end_ns is not None and trace.start_ns is not None
        else None
    )
    return TraceSummary(
        trace_id=trace.trace_id,
        name=trace.name,
        start_ns=trace.start_ns,
        end_ns=trace.end_ns,
        duration_ns=duration,
        step_count=trace.step_count,
        span_count=trace.span_count,
        status=trace.status,
        verdict=trace.verdict,
        session_id=trace.session_id,
        user_id=trace.user_id,
        tags=list(trace.tags or []),
        models=list(trace.models or []),
        input_tokens=trace.input_tokens,
        output_tokens=trace.output_tokens,
        reasoning_tokens=trace.reasoning_tokens,
    )
