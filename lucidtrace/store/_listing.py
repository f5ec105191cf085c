"""Trace lists: filters, order and summaries; re-exported by :mod:`lucidtrace.store.repository`."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from lucidtrace.store.models import (
    DEFAULT_PROJECT_ID,
    FINDING_STATUSES,
    VERDICTS,
    Finding,
    Trace,
)
from lucidtrace.store.search import trace_search_filter

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "ORDERS",
    "FindingsBucket",
    "SessionSummary",
    "TracePage",
    "TraceSummary",
    "count_sessions",
    "count_traces",
    "decode_cursor",
    "findings_overview",
    "list_sessions",
    "list_trace_page",
    "list_traces",
]

INT64_MAX = 2**63 - 1
"""The largest value the store's integer columns (times, counts, ids) hold."""
INT64_MIN = -(2**63)
"""The smallest value the store's integer columns hold."""

TRACE_STATUSES = ("unset", "ok", "error")
"""A trace's status, from its spans."""

BUCKETS = {
    "hour": 3_600 * 10**9,
    "day": 86_400 * 10**9,
    "week": 7 * 86_400 * 10**9,
}
"""The time buckets of :func:`findings_overview`, in nanoseconds."""

_DURATION = Trace.end_ns - Trace.start_ns
_VERDICT_RANK = sa.case({"clear": 0, "unchecked": 1, "flagged": 2}, value=Trace.verdict, else_=1)
_ORDERS: dict[str, Any] = {
    "start": Trace.start_ns,
    "duration": _DURATION,
    "name": Trace.name,
    "steps": Trace.step_count,
    "verdict": _VERDICT_RANK,
    "status": Trace.status,
}
_NULLABLE = frozenset({"start", "duration", "name"})
_TEXT_ORDERS = frozenset({"name", "status"})
ORDERS = tuple(sorted(_ORDERS))
"""The keys a trace list can be sorted by (prefix ``-`` for descending)."""


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


@dataclass(frozen=True)
class TracePage:
    """One page of a trace list and the cursor of the next (None on the last page)."""

    items: list[TraceSummary]
    next_cursor: str | None


def list_traces(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
    status: str | None = None,
    verdict: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    check: str | None = None,
    check_status: str | None = None,
    model: str | None = None,
    search: str | None = None,
    order: str = "-start",
) -> list[TraceSummary]:
    """Traces matching every given filter, newest first by default.

    Args:
        session: An open session.
        project_id: The project to read.
        limit: At most this many traces.
        offset: Skip this many first (after ``cursor``, if given).
        cursor: Continue after the trace this cursor names (from :func:`list_trace_page`);
            it must come from a list with the same ``order``.
        status: Trace status (``unset``, ``ok``, ``error``).
        verdict: ``unchecked``, ``clear`` or ``flagged``.
        session_id: Only this session's traces.
        user_id: Only this user's traces.
        tag: Only traces carrying this tag.
        name: Only traces whose name contains this text (case-insensitive).
        since_ns: Only traces that started at or after this time.
        until_ns: Only traces that started before this time.
        check: Only traces with a finding of this check (e.g. ``citation_support``).
        check_status: Only traces with a finding of this status (``flagged``, ``passed``,
            ``inconclusive``, ``error``), of ``check`` when given.
        model: Only traces that called this model (exact name).
        search: Words and ``"quoted phrases"`` that a step, the input or the output must
            contain (see :mod:`lucidtrace.store.search`); blank means no search.
        order: ``start``, ``duration``, ``name``, ``steps``, ``verdict`` (severity) or
            ``status``; a leading ``-`` sorts descending. Ties are broken by trace id (in the
            same direction); traces without a value (no start, no name) come last either way.

    Raises:
        ValueError: An unknown order, filter value or a bad cursor.
    """
    return list_trace_page(
        session,
        project_id=project_id,
        limit=limit,
        offset=offset,
        cursor=cursor,
        status=status,
        verdict=verdict,
        session_id=session_id,
        user_id=user_id,
        tag=tag,
        name=name,
        since_ns=since_ns,
        until_ns=until_ns,
        check=check,
        check_status=check_status,
        model=model,
        search=search,
        order=order,
    ).items


def list_trace_page(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
    status: str | None = None,
    verdict: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    check: str | None = None,
    check_status: str | None = None,
    model: str | None = None,
    search: str | None = None,
    order: str = "-start",
) -> TracePage:
    """Like :func:`list_traces`, with the cursor of the next page (keyset pagination).

    Pass ``next_cursor`` back as ``cursor`` (same filters and order) for the next page; it is
    None when this page is the last. Keyset pages stay fast however deep they go, and traces
    ingested meanwhile never shift a page.

    Raises:
        ValueError: An unknown order, filter value or a bad cursor.
    """
    descending = order.startswith("-")
    field_name = order.lstrip("-")
    key = _order_key(session, field_name)
    if key is None:
        raise ValueError(
            f"unknown order {order!r}: use one of {list(ORDERS)} (prefix - to reverse)"
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
        check=check,
        check_status=check_status,
        model=model,
        search=search,
    )
    if filters is None or limit <= 0:
        return TracePage(items=[], next_cursor=None)
    after: tuple[Any, str] | None = decode_cursor(cursor, order=order) if cursor else None
    nullable = field_name in _NULLABLE
    want = limit + 1
    offset = max(offset, 0)
    # Traces with a sort value first, then (for a column that may be empty) those without, by
    # id: two index-friendly scans instead of one NULLS LAST sort that indexes cannot serve.
    rows: list[Any] = []
    keyed = [*filters, key.is_not(None)] if nullable else list(filters)
    if after is None or after[0] is not None:
        if after is not None:
            bound = sa.tuple_(key, Trace.trace_id)
            mark = sa.tuple_(sa.literal(after[0]), sa.literal(after[1]))
            keyed.append(bound < mark if descending else bound > mark)
        rows = _page(session, key, keyed, descending, by_key=True, limit=want, offset=offset)
    if nullable and len(rows) < want:
        empty = [*filters, key.is_(None)]
        if after is not None and after[0] is None:
            empty.append(Trace.trace_id < after[1] if descending else Trace.trace_id > after[1])
        skip = 0
        if offset and not rows and (after is None or after[0] is not None):
            before = session.scalar(sa.select(sa.func.count()).select_from(Trace).where(*keyed))
            skip = max(0, offset - int(before or 0))
        elif offset and after is not None and after[0] is None:
            skip = offset
        rows += _page(
            session, key, empty, descending, by_key=False, limit=want - len(rows), offset=skip
        )
    items = [_summary(row[0]) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(order, last[1], last[0].trace_id)
    return TracePage(items=items, next_cursor=next_cursor)


def _order_key(session: Session, field_name: str) -> Any:
    key = _ORDERS.get(field_name)
    if field_name == "name" and session.get_bind().dialect.name == "postgresql":
        # Byte order, as SQLite sorts: the same list on both databases.
        return Trace.name.collate("C")
    return key


def _page(
    session: Session,
    key: Any,
    filters: list[sa.ColumnElement[bool]],
    descending: bool,
    *,
    by_key: bool,
    limit: int,
    offset: int,
) -> list[Any]:
    tiebreak = Trace.trace_id.desc() if descending else Trace.trace_id.asc()
    ordering = [key.desc() if descending else key.asc(), tiebreak] if by_key else [tiebreak]
    query = (
        sa.select(Trace, key.label("sort_key"))
        .where(*filters)
        .order_by(*ordering)
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(query).all())


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
    check: str | None = None,
    check_status: str | None = None,
    model: str | None = None,
    search: str | None = None,
    at_most: int | None = None,
) -> int:
    """How many traces :func:`list_traces` would find with these filters and no limit.

    With ``at_most``, counting stops past that many: the result is the exact count when it is
    ``at_most`` or less, else ``at_most + 1`` (read: "more than at_most"), at a bounded cost.

    Raises:
        ValueError: A bad filter value.
    """
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
        check=check,
        check_status=check_status,
        model=model,
        search=search,
    )
    if filters is None:
        return 0
    if at_most is not None:
        bounded = sa.select(sa.literal(1)).where(*filters).limit(max(at_most, 0) + 1)
        return int(session.scalar(sa.select(sa.func.count()).select_from(bounded.subquery())) or 0)
    query = sa.select(sa.func.count()).select_from(Trace).where(*filters)
    return int(session.scalar(query) or 0)


def _encode_cursor(order: str, value: Any, trace_id: str) -> str:
    raw = json.dumps([order, value, trace_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, order: str) -> tuple[Any, str]:
    """The sort value and trace id a cursor continues after.

    Raises:
        ValueError: The cursor is malformed or was made for another order.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, trace_id = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError("bad cursor: pass the next_cursor of the previous page unchanged") from exc
    if made_for != order:
        raise ValueError(
            f"this cursor belongs to a list ordered by {made_for!r}, not {order!r}: "
            "start again without a cursor"
        )
    bad = ValueError("bad cursor: pass the next_cursor of the previous page unchanged")
    if not isinstance(trace_id, str) or "\x00" in trace_id:
        raise bad
    if value is not None:
        # The value must have the type of the order's column, or the database cannot compare.
        if order.lstrip("-") in _TEXT_ORDERS:
            if not isinstance(value, str) or "\x00" in value:
                raise bad
        elif (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not INT64_MIN <= value <= INT64_MAX
        ):
            raise bad
    return value, trace_id


def _check_value(label: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {label} {value!r}: use one of {list(allowed)}")


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
    check: str | None = None,
    check_status: str | None = None,
    model: str | None = None,
    search: str | None = None,
) -> list[sa.ColumnElement[bool]] | None:
    """The WHERE clauses; None when the filters can match nothing (a search without words)."""
    _check_value("status", status, TRACE_STATUSES)
    _check_value("verdict", verdict, VERDICTS)
    _check_value("check status", check_status, FINDING_STATUSES)
    filters: list[sa.ColumnElement[bool]] = [Trace.project_id == project_id]
    equal = {
        Trace.status: status,
        Trace.verdict: verdict,
        Trace.session_id: session_id,
        Trace.user_id: user_id,
    }
    filters.extend(column == value for column, value in equal.items() if value is not None)
    if tag is not None:
        filters.append(_json_list_has(session, Trace.tags, tag))
    if model is not None:
        filters.append(_json_list_has(session, Trace.models, model))
    if name:
        filters.append(Trace.name.icontains(name, autoescape=True))
    if since_ns is not None:
        filters.append(Trace.start_ns >= since_ns)
    if until_ns is not None:
        filters.append(Trace.start_ns < until_ns)
    if check is not None or check_status is not None:
        found = sa.select(Finding.id).where(
            Finding.project_id == Trace.project_id, Finding.trace_id == Trace.trace_id
        )
        if check is not None:
            found = found.where(Finding.check_name == check)
        if check_status is not None:
            found = found.where(Finding.status == check_status)
        filters.append(found.exists())
    if search is not None and search.strip():
        matching = trace_search_filter(session, project_id=project_id, query=search)
        if matching is None:
            return None
        filters.append(matching)
    return filters


def _json_list_has(session: Session, column: Any, item: str) -> sa.ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return sa.type_coerce(column, postgresql.JSONB).contains([item])
    values = sa.func.json_each(column).table_valued("value")
    return sa.exists().select_from(values).where(values.c.value == item)


@dataclass(frozen=True)
class SessionSummary:
    """A session (conversation): its traces counted, first and last start, how many flagged."""

    session_id: str
    trace_count: int
    first_start_ns: int | None
    last_start_ns: int | None
    flagged_count: int

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-serialisable values."""
        return asdict(self)


def list_sessions(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    limit: int = 50,
    offset: int = 0,
    search: str | None = None,
) -> list[SessionSummary]:
    """Sessions of a project, the most recently active first (ties by session id).

    The traces of one session are ``list_traces(session, session_id=..., order="start")``.

    Args:
        session: An open session.
        project_id: The project to read.
        limit: At most this many sessions.
        offset: Skip this many first.
        search: Only sessions whose id contains this text (case-insensitive).
    """
    last = sa.func.max(Trace.start_ns)
    query = (
        sa.select(
            Trace.session_id,
            sa.func.count(),
            sa.func.min(Trace.start_ns),
            last,
            sa.func.sum(sa.case((Trace.verdict == "flagged", 1), else_=0)),
        )
        .where(Trace.project_id == project_id, Trace.session_id.is_not(None))
        .group_by(Trace.session_id)
        .order_by(sa.nulls_last(last.desc()), Trace.session_id)
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    if search:
        query = query.where(Trace.session_id.icontains(search, autoescape=True))
    return [
        SessionSummary(
            session_id=row[0],
            trace_count=int(row[1]),
            first_start_ns=row[2],
            last_start_ns=row[3],
            flagged_count=int(row[4] or 0),
        )
        for row in session.execute(query)
    ]


def count_sessions(
    session: Session, *, project_id: str = DEFAULT_PROJECT_ID, search: str | None = None
) -> int:
    """How many sessions :func:`list_sessions` would find with no limit."""
    query = sa.select(sa.func.count(sa.distinct(Trace.session_id))).where(
        Trace.project_id == project_id, Trace.session_id.is_not(None)
    )
    if search:
        query = query.where(Trace.session_id.icontains(search, autoescape=True))
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class FindingsBucket:
    """The findings of one check in one time bucket: how many, how many flagged, the rate."""

    check_name: str
    bucket_start_ns: int
    total: int
    flagged: int
    rate: float

    def to_dict(self) -> dict[str, Any]:
        """The bucket as JSON-serialisable values."""
        return asdict(self)


def findings_overview(
    session: Session,
    *,
    project_id: str = DEFAULT_PROJECT_ID,
    bucket: str = "day",
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[FindingsBucket]:
    """Findings per check and per time bucket (by when the finding was made), oldest first.

    ``rate`` is flagged / total of the bucket. Buckets start at multiples of the bucket length
    since the Unix epoch (UTC midnight for ``day``).

    Args:
        session: An open session.
        project_id: The project to read.
        bucket: ``hour``, ``day`` or ``week``.
        since_ns: Only findings made at or after this time.
        until_ns: Only findings made before this time.

    Raises:
        ValueError: An unknown bucket.
    """
    width = BUCKETS.get(bucket)
    if width is None:
        raise ValueError(f"unknown bucket {bucket!r}: use one of {list(BUCKETS)}")
    start = ((Finding.created_ns // width) * width).label("bucket")
    flagged = sa.func.sum(sa.case((Finding.status == "flagged", 1), else_=0))
    query = (
        sa.select(Finding.check_name, start, sa.func.count(), flagged)
        .where(Finding.project_id == project_id)
        .group_by(Finding.check_name, start)
        .order_by(start, Finding.check_name)
    )
    if since_ns is not None:
        query = query.where(Finding.created_ns >= since_ns)
    if until_ns is not None:
        query = query.where(Finding.created_ns < until_ns)
    result = []
    for check_name, bucket_start, count, flagged_sum in session.execute(query):
        total = int(count)
        flagged_count = int(flagged_sum or 0)
        result.append(
            FindingsBucket(
                check_name=check_name,
                bucket_start_ns=int(bucket_start),
                total=total,
                flagged=flagged_count,
                rate=flagged_count / total if total else 0.0,
            )
        )
    return result


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
