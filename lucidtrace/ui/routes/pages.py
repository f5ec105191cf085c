"""The list pages: traces, sessions, one session, the findings overview; HTML error pages.

Every page is rendered on the server from the store (see :mod:`lucidtrace.ui.templating`);
query parameters are read leniently but checked: a bad value answers 400 with the page and a
message saying what to change, never a stack trace.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from lucidtrace.store import (
    SessionSummary,
    findings_overview,
    list_sessions,
    list_trace_page,
    list_traces,
)
from lucidtrace.store._listing import INT64_MAX, INT64_MIN
from lucidtrace.store.models import Finding, Trace
from lucidtrace.ui.auth import Principal, page_principal
from lucidtrace.ui.deps import db_session
from lucidtrace.ui.templating import render

__all__ = ["HTMLErrorRoute", "register_error_pages", "router"]

_log = logging.getLogger("lucidtrace.ui")

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
DAY_NS = 86_400 * 1_000_000_000
HOUR_NS = 3_600 * 1_000_000_000
RANGES: dict[str, int] = {"1h": HOUR_NS, "24h": 24 * HOUR_NS, "7d": 7 * DAY_NS, "30d": 30 * DAY_NS}
"""Presets of the time-range filter: how far back from now."""
STATUSES = ("ok", "error", "unset")
VERDICTS = ("flagged", "clear", "unchecked")
CHECK_STATUSES = ("flagged", "passed", "inconclusive", "error")
SORTABLE = ("name", "start", "duration", "steps", "status", "verdict")
FINDINGS_WINDOWS = (7, 30, 90)
CHART_WIDTH = 720
CHART_HEIGHT = 220
CHART_PAD = 36
MAX_SERIES = 8


class HTMLErrorRoute(APIRoute):
    """A route whose unexpected errors answer the HTML 500 page (logged, no traceback shown)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The default handler, with unexpected exceptions turned into the error page."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (HTTPException, StarletteHTTPException):
                raise
            except Exception:
                _log.exception("page %s failed", request.url.path)
                return render(request, "500.html", status_code=500)

        return guarded


PagePrincipal = Annotated[Principal, Depends(page_principal)]
DbSession = Annotated[Session, Depends(db_session)]

router = APIRouter(tags=["pages"], include_in_schema=False, route_class=HTMLErrorRoute)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/v1/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def register_error_pages(app: FastAPI) -> None:
    """Answer 404 (and 405) with the HTML page for browsers; JSON clients keep JSON errors."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404 and _wants_html(request):
            return render(request, "404.html", status_code=404, message=None)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, handler)


# --- query parameters --------------------------------------------------------------------


@dataclass
class TraceQuery:
    """The trace list's filters, sort and page, as read from the query string."""

    q: str = ""
    status: str = ""
    verdict: str = ""
    check: str = ""
    check_status: str = ""
    model: str = ""
    tag: str = ""
    session: str = ""
    user: str = ""
    range: str = ""
    since: str = ""
    until: str = ""
    sort: str = "-start"
    cursor: str = ""
    limit: int = PAGE_SIZE
    errors: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(
            (
                self.q,
                self.status,
                self.verdict,
                self.check,
                self.check_status,
                self.model,
                self.tag,
                self.session,
                self.user,
                self.range,
                self.since,
                self.until,
            )
        )


def _text(request: Request, name: str, limit: int = 500) -> str:
    return request.query_params.get(name, "").strip()[:limit]


def _int(
    request: Request, name: str, default: int, *, low: int, high: int, errors: list[str]
) -> int:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(f"{name} must be a whole number, not {raw[:40]!r}")
        return default
    if not low <= value <= high:
        errors.append(f"{name} must be between {low} and {high}")
        return default
    return value


def _choice(request: Request, name: str, allowed: Sequence[str], errors: list[str]) -> str:
    value = _text(request, name, 40)
    if value and value not in allowed:
        errors.append(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return ""
    return value


def _parse_time(raw: str, name: str, errors: list[str]) -> int | None:
    """A ``datetime-local`` value (``2026-11-22T10:00``, read as UTC) or a date, as epoch ns."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        errors.append(f"{name} must be a date and time like 2026-11-22T10:00 (UTC)")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        ns = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    except (OverflowError, ValueError):
        ns = INT64_MAX + 1
    if not INT64_MIN <= ns <= INT64_MAX:
        errors.append(f"{name} must be a time between the years 1678 and 2262")
        return None
    return ns


def _trace_query(request: Request) -> TraceQuery:
    errors: list[str] = []
    sort = _text(request, "sort", 40) or "-start"
    if sort.lstrip("-") not in SORTABLE:
        errors.append(f"sort must be one of {', '.join(SORTABLE)} (prefix - to reverse)")
        sort = "-start"
    return TraceQuery(
        q=_text(request, "q"),
        status=_choice(request, "status", STATUSES, errors),
        verdict=_choice(request, "verdict", VERDICTS, errors),
        check=_text(request, "check", 100),
        check_status=_choice(request, "check_status", CHECK_STATUSES, errors),
        model=_text(request, "model", 200),
        tag=_text(request, "tag"),
        session=_text(request, "session"),
        user=_text(request, "user"),
        range=_choice(request, "range", tuple(RANGES), errors),
        since=_text(request, "since", 40),
        until=_text(request, "until", 40),
        sort=sort,
        cursor=_text(request, "cursor", 1000),
        limit=_int(request, "limit", PAGE_SIZE, low=1, high=MAX_PAGE_SIZE, errors=errors),
        errors=errors,
    )


# --- store access ------------------------------------------------------------------------


def _fetch_traces(
    db: Session, principal: Principal, query: TraceQuery
) -> tuple[list[Any], str | None]:
    """One page of the trace list and the cursor of the next (errors go into ``query``)."""
    since_ns = _parse_time(query.since, "since", query.errors)
    until_ns = _parse_time(query.until, "until", query.errors)
    if query.range:
        since_ns = max(since_ns or 0, time.time_ns() - RANGES[query.range])
    if query.errors:
        return [], None
    try:
        page = list_trace_page(
            db,
            project_id=principal.project_id,
            limit=query.limit,
            cursor=query.cursor or None,
            status=query.status or None,
            verdict=query.verdict or None,
            session_id=query.session or None,
            user_id=query.user or None,
            tag=query.tag or None,
            since_ns=since_ns,
            until_ns=until_ns,
            check=query.check or None,
            check_status=query.check_status or None,
            model=query.model or None,
            search=query.q or None,
            order=query.sort,
        )
    except ValueError as exc:
        query.errors.append(str(exc))
        return [], None
    return list(page.items), page.next_cursor


def _flag_reasons(db: Session, project_id: str, trace_ids: Sequence[str]) -> dict[str, list[str]]:
    """The names of the checks that flagged each trace."""
    if not trace_ids:
        return {}
    rows = db.execute(
        sa.select(Finding.trace_id, Finding.check_name)
        .where(
            Finding.project_id == project_id,
            Finding.trace_id.in_(list(trace_ids)),
            Finding.status == "flagged",
        )
        .distinct()
    )
    reasons: dict[str, list[str]] = {}
    for trace_id, check_name in rows:
        reasons.setdefault(trace_id, []).append(check_name)
    return {key: sorted(value) for key, value in reasons.items()}


_CHECK_NAMES_TTL_NS = 30 * 1_000_000_000
_check_names_cache: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, list[str]]]] = (
    weakref.WeakKeyDictionary()
)


def _check_names(db: Session, project_id: str) -> list[str]:
    """The project's check names for the filter drop-downs (cached for 30 s per store)."""
    per_project = _check_names_cache.setdefault(db.get_bind(), {})
    now = time.monotonic_ns()
    cached = per_project.get(project_id)
    if cached is not None and now - cached[0] < _CHECK_NAMES_TTL_NS:
        return cached[1]
    names = _load_check_names(db, project_id)
    per_project[project_id] = (now, names)
    return names


def _load_check_names(db: Session, project_id: str) -> list[str]:
    rows = db.scalars(
        sa.select(Finding.check_name)
        .where(Finding.project_id == project_id)
        .distinct()
        .order_by(Finding.check_name)
        .limit(200)
    )
    return list(rows)


# --- routes ------------------------------------------------------------------------------


@router.get("/")
def home(principal: PagePrincipal) -> RedirectResponse:
    """The trace list is the home page."""
    return RedirectResponse("/traces", status_code=307)


@router.get("/traces")
def traces_page(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
) -> Response:
    """Search, filter, sort and page through the project's traces."""
    query = _trace_query(request)
    rows, next_cursor = _fetch_traces(db, principal, query) if not query.errors else ([], None)
    reasons = _flag_reasons(db, principal.project_id, [row.trace_id for row in rows])
    has_any = bool(rows) or query.active or bool(query.cursor) or _has_any_trace(db, principal)
    return render(
        request,
        "traces.html",
        status_code=400 if query.errors else 200,
        principal=principal,
        nav="traces",
        query=query,
        rows=rows,
        reasons=reasons,
        next_cursor=next_cursor,
        has_any=has_any,
        statuses=STATUSES,
        verdicts=VERDICTS,
        check_statuses=CHECK_STATUSES,
        ranges=tuple(RANGES),
        checks=_check_names(db, principal.project_id),
        base_url=str(request.base_url).rstrip("/"),
    )


def _has_any_trace(db: Session, principal: Principal) -> bool:
    found = db.scalar(
        sa.select(Trace.trace_id).where(Trace.project_id == principal.project_id).limit(1)
    )
    return found is not None


@router.get("/sessions")
def sessions_page(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
) -> Response:
    """Traces grouped by session, most recently active first."""
    errors: list[str] = []
    search = _text(request, "q")
    offset = _int(request, "offset", 0, low=0, high=10_000_000, errors=errors)
    limit = _int(request, "limit", PAGE_SIZE, low=1, high=MAX_PAGE_SIZE, errors=errors)
    rows: list[SessionSummary] = []
    if not errors:
        rows = list_sessions(
            db,
            project_id=principal.project_id,
            search=search or None,
            offset=offset,
            limit=limit + 1,
        )
    has_next = len(rows) > limit
    return render(
        request,
        "sessions.html",
        status_code=400 if errors else 200,
        principal=principal,
        nav="sessions",
        errors=errors,
        q=search,
        rows=rows[:limit],
        offset=offset,
        has_next=has_next,
        next_offset=offset + limit,
        prev_offset=max(offset - limit, 0),
    )


@router.get("/sessions/{session_id:path}")
def session_page(
    session_id: str,
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
) -> Response:
    """One session's traces in the order they started, with what went in and came out."""
    errors: list[str] = []
    offset = _int(request, "offset", 0, low=0, high=10_000_000, errors=errors)
    limit = _int(request, "limit", PAGE_SIZE, low=1, high=MAX_PAGE_SIZE, errors=errors)
    rows = list_traces(
        db,
        project_id=principal.project_id,
        session_id=session_id,
        order="start",
        offset=offset,
        limit=limit + 1,
    )
    if not rows and offset == 0:
        return render(
            request,
            "404.html",
            status_code=404,
            principal=principal,
            nav="sessions",
            message="No traces in this session (or no such session).",
        )
    has_next = len(rows) > limit
    rows = rows[:limit]
    ids = [row.trace_id for row in rows]
    texts = {
        trace_id: (trace_input, trace_output)
        for trace_id, trace_input, trace_output in db.execute(
            sa.select(Trace.trace_id, Trace.input, Trace.output).where(
                Trace.project_id == principal.project_id, Trace.trace_id.in_(ids)
            )
        )
    }
    return render(
        request,
        "session.html",
        status_code=400 if errors else 200,
        principal=principal,
        nav="sessions",
        errors=errors,
        session_id=session_id,
        rows=rows,
        texts=texts,
        reasons=_flag_reasons(db, principal.project_id, ids),
        offset=offset,
        has_next=has_next,
        next_offset=offset + limit,
        prev_offset=max(offset - limit, 0),
    )


@dataclass(frozen=True)
class CheckSeries:
    """One check's findings per day in the findings window."""

    check_name: str
    css_index: int
    days: list[tuple[int, int, int]]  # (day index since epoch, total, flagged)
    total: int
    flagged: int
    points: str  # SVG polyline points of the flag rate

    @property
    def rate(self) -> float:
        """Share of this check's findings that flagged, over the window."""
        return self.flagged / self.total if self.total else 0.0


@router.get("/findings")
def findings_page(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
) -> Response:
    """Flag rates per check over time, and the latest flagged findings."""
    errors: list[str] = []
    days = _int(request, "days", 30, low=1, high=366, errors=errors)
    check = _text(request, "check", 100)
    today = time.time_ns() // DAY_NS
    first_day = today - days + 1
    series = _findings_series(db, principal.project_id, first_day, today, check)
    latest = _latest_flagged(db, principal.project_id, check)
    chart_data = {
        "days": [_day_label(day) for day in range(first_day, today + 1)],
        "series": [
            {
                "check": item.check_name,
                "index": item.css_index,
                "points": [
                    {"day": _day_label(day), "total": total, "flagged": flagged}
                    for day, total, flagged in item.days
                ],
            }
            for item in series
        ],
    }
    return render(
        request,
        "findings.html",
        status_code=400 if errors else 200,
        principal=principal,
        nav="findings",
        errors=errors,
        days=days,
        windows=FINDINGS_WINDOWS,
        check=check,
        checks=_check_names(db, principal.project_id),
        series=series,
        latest=latest,
        chart=_chart_frame(first_day, today),
        chart_data=chart_data,
        day_label=_day_label,
    )


def _day_label(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


def _findings_series(
    db: Session, project_id: str, first_day: int, last_day: int, check: str
) -> list[CheckSeries]:
    buckets = findings_overview(
        db, project_id=project_id, bucket="day", since_ns=first_day * DAY_NS
    )
    per_check: dict[str, list[tuple[int, int, int]]] = {}
    for bucket in buckets:
        if check and bucket.check_name != check:
            continue
        day = bucket.bucket_start_ns // DAY_NS
        per_check.setdefault(bucket.check_name, []).append((day, bucket.total, bucket.flagged))
    series = []
    for index, (name, days) in enumerate(sorted(per_check.items())):
        days.sort()
        series.append(
            CheckSeries(
                check_name=name,
                css_index=index % MAX_SERIES,
                days=days,
                total=sum(total for _, total, _ in days),
                flagged=sum(flag for _, _, flag in days),
                points=_polyline(days, first_day, last_day),
            )
        )
    return series


def _x(day: int, first_day: int, last_day: int) -> float:
    span = max(last_day - first_day, 1)
    return CHART_PAD + (day - first_day) * (CHART_WIDTH - 2 * CHART_PAD) / span


def _y(rate: float) -> float:
    return CHART_HEIGHT - CHART_PAD - rate * (CHART_HEIGHT - 2 * CHART_PAD)


def _polyline(days: list[tuple[int, int, int]], first_day: int, last_day: int) -> str:
    return " ".join(
        f"{_x(day, first_day, last_day):.1f},{_y(flagged / total if total else 0):.1f}"
        for day, total, flagged in days
    )


def _chart_frame(first_day: int, last_day: int) -> dict[str, Any]:
    """Axis positions and labels of the flag-rate chart."""
    step = max((last_day - first_day) // 6, 1)
    ticks = [
        {"x": round(_x(day, first_day, last_day), 1), "label": _day_label(day)[5:]}
        for day in range(first_day, last_day + 1, step)
    ]
    grid = [
        {"y": round(_y(rate), 1), "label": f"{round(rate * 100)}%"}
        for rate in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_PAD,
        "right": CHART_WIDTH - CHART_PAD,
        "bottom": CHART_HEIGHT - CHART_PAD,
        "ticks": ticks,
        "grid": grid,
        "first_day": first_day,
        "last_day": last_day,
        "x": lambda day: round(_x(day, first_day, last_day), 1),
        "y": lambda rate: round(_y(rate), 1),
    }


@dataclass(frozen=True)
class FlaggedFinding:
    """A flagged finding with its trace's name."""

    finding: Finding
    trace_name: str | None


def _latest_flagged(db: Session, project_id: str, check: str) -> list[FlaggedFinding]:
    query = (
        sa.select(Finding, Trace.name)
        .join(
            Trace,
            sa.and_(Trace.project_id == Finding.project_id, Trace.trace_id == Finding.trace_id),
        )
        .where(Finding.project_id == project_id, Finding.status == "flagged")
        .order_by(Finding.created_ns.desc(), Finding.id.desc())
        .limit(50)
    )
    if check:
        query = query.where(Finding.check_name == check)
    return [FlaggedFinding(finding=row[0], trace_name=row[1]) for row in db.execute(query)]
