"""The JSON query API (``/api/v1``): traces, search, sessions, findings, exports.

Every route reads the project of its caller (:func:`~lucidtrace.ui.auth.api_principal`), never a
project named in the request: a trace of another project is simply not found (404). Bad filter
values are a 400 with a message that says what is accepted; malformed parameters (a limit that is
not a number) a 422. The OpenAPI document is at ``/openapi.json`` and browsable at ``/docs``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from lucidtrace.store import (
    TraceSummary,
    count_sessions,
    count_traces,
    export_trace,
    export_trace_otlp,
    findings_overview,
    get_trace,
    list_sessions,
    list_trace_page,
    search_steps,
)
from lucidtrace.store._listing import INT64_MAX, INT64_MIN
from lucidtrace.store.models import Attribution, Span, Trace
from lucidtrace.store.repository import row_to_dict
from lucidtrace.ui.auth import Principal, api_principal
from lucidtrace.ui.deps import db_session

__all__ = ["FIELD_PREVIEW_CHARS", "LARGE_FIELDS", "MAX_LIMIT", "TOTAL_CAP", "router"]

router = APIRouter(prefix="/api/v1", tags=["query"])

TOTAL_CAP = 10_000
"""A trace list's ``total`` counts this many at most (then ``total_capped`` is true)."""

MAX_LIMIT = 500
"""The most rows one API page returns."""

FIELD_PREVIEW_CHARS = 2_000
"""Characters of a span's input/output kept in trace and span listings; the full value is at
``/api/v1/spans/{span_id}/field/{name}``."""

LARGE_FIELDS = ("input", "output", "attributes", "events", "resource", "status_message")
"""Span fields that ``/api/v1/spans/{span_id}/field/{name}`` returns in full."""

_COSTLY_TO_COUNT = ("search", "check", "check_status", "model", "tag", "name")
"""Filters that make counting every match cost more than the page itself: no total then."""

_HEX_ID = re.compile(r"[0-9a-fA-F]{1,32}")

DbSession = Annotated[Session, Depends(db_session)]
Caller = Annotated[Principal, Depends(api_principal)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX, description="Rows to skip.")]


# ----------------------------------------------------------------------------- response models


class TraceList(BaseModel):
    """A page of traces; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[TraceSummary]
    next_cursor: str | None = Field(description="Cursor of the next page; null on the last.")
    total: int | None = Field(
        description="Traces matching the filters, counted up to 10,000, on the first page and "
        "when counting is cheap (not with q, check, check_status, model, tag or name); "
        "otherwise null."
    )
    total_capped: bool = Field(
        default=False, description="True when more traces match than `total` says (10,000+)."
    )


class SpanList(BaseModel):
    """A page of a trace's spans, in start order; large fields cut (see ``truncated``)."""

    items: list[dict[str, Any]]
    total: int
    next_offset: int | None


class TraceDetailResponse(BaseModel):
    """A trace with its spans, audit trail, documents, findings and attribution ids."""

    trace: dict[str, Any]
    spans: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    attribution_ids: list[int]


class StepMatchItem(BaseModel):
    """A step that matched a search, with a plain-text snippet."""

    trace_id: str
    span_id: str
    seq: int
    type: str
    ts_ns: int
    snippet: str
    highlights: list[list[int]] = Field(description="[start, end) ranges within the snippet.")
    trace_name: str | None


class SearchResult(BaseModel):
    """Steps matching a search, newest first."""

    query: str
    items: list[StepMatchItem]


class SessionItem(BaseModel):
    """A session: its trace count, first and last start, flagged traces."""

    session_id: str
    trace_count: int
    first_start_ns: int | None
    last_start_ns: int | None
    flagged_count: int


class SessionList(BaseModel):
    """A page of sessions, most recently active first."""

    items: list[SessionItem]
    total: int


class SessionDetail(BaseModel):
    """One session and its traces in start order."""

    session: SessionItem
    traces: list[TraceSummary]
    next_cursor: str | None


class OverviewBucket(BaseModel):
    """The findings of one check in one time bucket."""

    check_name: str
    bucket_start_ns: int
    total: int
    flagged: int
    rate: float


class FindingsOverview(BaseModel):
    """Findings per check and time bucket, oldest first."""

    bucket: str
    items: list[OverviewBucket]


class SpanField(BaseModel):
    """The full value of one large field of a span."""

    span_id: str
    trace_id: str
    name: str
    value: Any


# ----------------------------------------------------------------------------- helpers


def _bad_request(exc: ValueError) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


def _trace_id(trace_id: str) -> str:
    if not _HEX_ID.fullmatch(trace_id):
        raise HTTPException(status_code=404, detail="no such trace: trace ids are 32 hex digits")
    return trace_id.lower()


def _not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no such {what} in this project")


def _ns(value: datetime | None, ns: int | None, name: str) -> int | None:
    if value is not None and ns is not None:
        raise HTTPException(status_code=400, detail=f"give {name} or {name}_ns, not both")
    if value is None:
        return ns
    if value.tzinfo is None:
        raise HTTPException(
            status_code=400, detail=f"{name} needs a time zone, e.g. 2026-11-22T10:00:00Z"
        )
    try:
        ns = int(value.timestamp() * 1_000_000) * 1_000
    except (OverflowError, ValueError):
        ns = INT64_MAX + 1
    if not INT64_MIN <= ns <= INT64_MAX:
        raise HTTPException(
            status_code=400,
            detail=f"{name} is outside the range of times the store holds (years 1678 to 2262)",
        )
    return ns


def _preview(value: Any) -> tuple[Any, bool]:
    if isinstance(value, str):
        if len(value) > FIELD_PREVIEW_CHARS:
            return value[:FIELD_PREVIEW_CHARS], True
        return value, False
    if isinstance(value, dict | list) and len(json.dumps(value, default=str)) > FIELD_PREVIEW_CHARS:
        return None, True
    return value, False


def _span_preview(span: Span) -> dict[str, Any]:
    values = row_to_dict(span)
    truncated = []
    for name in LARGE_FIELDS:
        values[name], cut = _preview(values[name])
        if cut:
            truncated.append(name)
    values.pop("project_id", None)
    values["truncated"] = truncated
    return values


def _row(row: Any) -> dict[str, Any]:
    values = row_to_dict(row)
    values.pop("project_id", None)
    return values


# ----------------------------------------------------------------------------- traces


@router.get("/traces", response_model=TraceList, summary="List and search traces")
def traces(
    *,
    db: DbSession,
    principal: Caller,
    status: Annotated[str | None, Query(description="unset, ok or error.")] = None,
    verdict: Annotated[str | None, Query(description="unchecked, clear or flagged.")] = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    name: Annotated[str | None, Query(description="Name contains (any case).")] = None,
    check: Annotated[str | None, Query(description="Has a finding of this check.")] = None,
    check_status: Annotated[
        str | None, Query(description="Has a finding with this status (of `check`).")
    ] = None,
    model: Annotated[str | None, Query(description="Called this model.")] = None,
    q: Annotated[
        str | None, Query(description='Full-text search: words and "quoted phrases".')
    ] = None,
    since: Annotated[datetime | None, Query(description="Started at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Started before (ISO 8601).")] = None,
    since_ns: Annotated[
        int | None,
        Query(ge=INT64_MIN, le=INT64_MAX, description="Started at or after (Unix ns)."),
    ] = None,
    until_ns: Annotated[
        int | None, Query(ge=INT64_MIN, le=INT64_MAX, description="Started before (Unix ns).")
    ] = None,
    order: Annotated[
        str,
        Query(description="start, duration, name, steps, verdict or status; '-' descends."),
    ] = "-start",
    limit: Limit = 50,
    offset: Offset = 0,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> TraceList:
    """Traces of the caller's project matching every filter, newest first by default."""
    filters: dict[str, Any] = {
        "status": status,
        "verdict": verdict,
        "session_id": session_id,
        "user_id": user_id,
        "tag": tag,
        "name": name,
        "check": check,
        "check_status": check_status,
        "model": model,
        "search": q,
        "since_ns": _ns(since, since_ns, "since"),
        "until_ns": _ns(until, until_ns, "until"),
    }
    try:
        page = list_trace_page(
            db,
            project_id=principal.project_id,
            limit=limit,
            offset=offset,
            cursor=cursor,
            order=order,
            **filters,
        )
        total: int | None = None
        capped = False
        if not cursor and not any(filters[name] for name in _COSTLY_TO_COUNT):
            total = count_traces(db, project_id=principal.project_id, at_most=TOTAL_CAP, **filters)
            capped = total > TOTAL_CAP
            total = min(total, TOTAL_CAP)
    except ValueError as exc:
        raise _bad_request(exc) from exc
    return TraceList(
        items=list(page.items),
        next_cursor=page.next_cursor,
        total=total,
        total_capped=capped,
    )


@router.get(
    "/traces/{trace_id}", response_model=TraceDetailResponse, summary="One trace, everything"
)
def trace_detail(trace_id: str, db: DbSession, principal: Caller) -> TraceDetailResponse:
    """A trace with its spans, steps, documents, findings and attribution map ids.

    Large span fields are cut (listed in each span's ``truncated``); load them in full from
    ``/api/v1/spans/{span_id}/field/{name}``.
    """
    detail = get_trace(db, project_id=principal.project_id, trace_id=_trace_id(trace_id))
    if detail is None:
        raise _not_found("trace")
    attribution_ids = db.scalars(
        sa.select(Attribution.id)
        .where(
            Attribution.project_id == principal.project_id,
            Attribution.trace_id == detail.trace.trace_id,
        )
        .order_by(Attribution.id)
    )
    return TraceDetailResponse(
        trace=_row(detail.trace),
        spans=[_span_preview(span) for span in detail.spans],
        steps=[{"index": entry.index, **_row(entry.step)} for entry in detail.steps],
        documents=[_row(doc) for doc in detail.documents],
        findings=[_row(finding) for finding in detail.findings],
        attribution_ids=list(attribution_ids),
    )


@router.get(
    "/traces/{trace_id}/export",
    summary="Export a trace (lucidtrace JSON or OTLP JSON)",
    response_model=None,
    responses={200: {"content": {"application/json": {}}}},
)
def trace_export(
    trace_id: str,
    db: DbSession,
    principal: Caller,
    format: Annotated[
        Literal["json", "otlp"],
        Query(description="json: every stored row; otlp: an OTLP/JSON ExportTraceServiceRequest."),
    ] = "json",
) -> JSONResponse:
    """The whole trace as a download: lucidtrace's JSON document or OTLP JSON."""
    wanted = _trace_id(trace_id)
    if format == "otlp":
        document = export_trace_otlp(db, project_id=principal.project_id, trace_id=wanted)
    else:
        document = export_trace(db, project_id=principal.project_id, trace_id=wanted)
    if document is None:
        raise _not_found("trace")
    suffix = "otlp.json" if format == "otlp" else "json"
    return JSONResponse(
        document,
        headers={"Content-Disposition": f'attachment; filename="trace-{wanted}.{suffix}"'},
    )


@router.get("/traces/{trace_id}/spans", response_model=SpanList, summary="A page of spans")
def trace_spans(
    trace_id: str,
    db: DbSession,
    principal: Caller,
    offset: Offset = 0,
    limit: Limit = 200,
) -> SpanList:
    """Spans of a trace in start order, a page at a time (for traces of 10k+ spans)."""
    wanted = _trace_id(trace_id)
    if db.get(Trace, (principal.project_id, wanted)) is None:
        raise _not_found("trace")
    in_trace = (Span.project_id == principal.project_id, Span.trace_id == wanted)
    total = int(db.scalar(sa.select(sa.func.count()).select_from(Span).where(*in_trace)) or 0)
    spans = db.scalars(
        sa.select(Span)
        .where(*in_trace)
        .order_by(Span.start_ns, Span.span_id)
        .offset(offset)
        .limit(limit)
    )
    items = [_span_preview(span) for span in spans]
    following = offset + len(items)
    return SpanList(items=items, total=total, next_offset=following if following < total else None)


@router.get(
    "/spans/{span_id}/field/{name}", response_model=SpanField, summary="A span's full field"
)
def span_field(
    span_id: str,
    name: str,
    db: DbSession,
    principal: Caller,
) -> SpanField:
    """The full value of one large span field, for pages that load big values on demand.

    ``name`` is ``input``, ``output``, ``attributes``, ``events``, ``resource`` or
    ``status_message``.
    """
    if name not in LARGE_FIELDS:
        raise HTTPException(
            status_code=400, detail=f"unknown field {name!r}: use one of {list(LARGE_FIELDS)}"
        )
    if not _HEX_ID.fullmatch(span_id):
        raise _not_found("span")
    span = db.get(Span, (principal.project_id, span_id.lower()))
    if span is None:
        raise _not_found("span")
    value = getattr(span, name)
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return SpanField(span_id=span.span_id, trace_id=span.trace_id, name=name, value=value)


@router.get("/attributions/{attribution_id}", summary="A saved attribution map")
def attribution(
    attribution_id: Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)],
    db: DbSession,
    principal: Caller,
) -> dict[str, Any]:
    """Tokens, scores and segment totals of one saved token-attribution map."""
    row = db.scalar(
        sa.select(Attribution).where(
            Attribution.id == attribution_id, Attribution.project_id == principal.project_id
        )
    )
    if row is None:
        raise _not_found("attribution")
    return _row(row)


# ----------------------------------------------------------------------------- search


@router.get("/search", response_model=SearchResult, summary="Search the audit trail")
def search(
    db: DbSession,
    principal: Caller,
    q: Annotated[str, Query(description='Words and "quoted phrases"; all must match.')],
    limit: Limit = 50,
    offset: Offset = 0,
) -> SearchResult:
    """Steps whose text matches every word and phrase of ``q``, newest first, with snippets."""
    matches = search_steps(db, project_id=principal.project_id, query=q, limit=limit, offset=offset)
    return SearchResult(query=q, items=[StepMatchItem.model_validate(m.to_dict()) for m in matches])


# ----------------------------------------------------------------------------- sessions


@router.get("/sessions", response_model=SessionList, summary="List sessions")
def sessions(
    db: DbSession,
    principal: Caller,
    q: Annotated[str | None, Query(description="Session id contains (any case).")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SessionList:
    """Sessions (conversations) of the project, the most recently active first."""
    rows = list_sessions(db, project_id=principal.project_id, limit=limit, offset=offset, search=q)
    return SessionList(
        items=[SessionItem.model_validate(row.to_dict()) for row in rows],
        total=count_sessions(db, project_id=principal.project_id, search=q),
    )


@router.get("/sessions/{session_id}", response_model=SessionDetail, summary="One session")
def session_detail(
    session_id: str,
    db: DbSession,
    principal: Caller,
    limit: Limit = 200,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> SessionDetail:
    """A session's summary and its traces, oldest first."""
    summary = db.execute(
        sa.select(
            sa.func.count(),
            sa.func.min(Trace.start_ns),
            sa.func.max(Trace.start_ns),
            sa.func.sum(sa.case((Trace.verdict == "flagged", 1), else_=0)),
        ).where(Trace.project_id == principal.project_id, Trace.session_id == session_id)
    ).one()
    if not summary[0]:
        raise _not_found("session")
    try:
        page = list_trace_page(
            db,
            project_id=principal.project_id,
            session_id=session_id,
            order="start",
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise _bad_request(exc) from exc
    return SessionDetail(
        session=SessionItem(
            session_id=session_id,
            trace_count=int(summary[0]),
            first_start_ns=summary[1],
            last_start_ns=summary[2],
            flagged_count=int(summary[3] or 0),
        ),
        traces=list(page.items),
        next_cursor=page.next_cursor,
    )


# ----------------------------------------------------------------------------- findings


@router.get("/findings/overview", response_model=FindingsOverview, summary="Flag rates over time")
def overview(
    db: DbSession,
    principal: Caller,
    bucket: Annotated[Literal["hour", "day", "week"], Query()] = "day",
    since_ns: Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)] = None,
    until_ns: Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)] = None,
) -> FindingsOverview:
    """Per check and per time bucket: findings, flagged findings and the flag rate."""
    rows = findings_overview(
        db,
        project_id=principal.project_id,
        bucket=bucket,
        since_ns=since_ns,
        until_ns=until_ns,
    )
    return FindingsOverview(
        bucket=bucket, items=[OverviewBucket.model_validate(row.to_dict()) for row in rows]
    )
