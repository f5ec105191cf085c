"""The trace detail page: span tree and waterfall, audit trail, sources and findings.

The page is rendered on the server from a bounded amount of data, whatever the trace's size:
the first :data:`SPAN_FIRST` rows of the span tree (the rest load through
``/api/v1/ui/traces/{id}/tree``, :data:`SPAN_CHUNK` at a time, as the reader scrolls), one page
of :data:`STEP_PAGE` steps of the audit trail (with links to the other pages), and every text
cut at :data:`FIELD_PREVIEW` characters in SQL (the full value loads through
``/api/v1/ui/traces/{id}/field``).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from lucidtrace.store._listing import INT64_MAX
from lucidtrace.store.errors import AmbiguousTraceIdError, TraceNotFoundError
from lucidtrace.store.models import Attribution, Document, Finding, Span, Step, Trace
from lucidtrace.store.repository import resolve_trace_id
from lucidtrace.ui.auth import Principal, api_principal, page_principal
from lucidtrace.ui.deps import db_session
from lucidtrace.ui.templating import render

__all__ = ["FIELD_PREVIEW", "SPAN_CHUNK", "SPAN_FIRST", "STEP_PAGE", "router"]

router = APIRouter(tags=["trace page"])

DbSession = Annotated[Session, Depends(db_session)]
PageCaller = Annotated[Principal, Depends(page_principal)]
ApiCaller = Annotated[Principal, Depends(api_principal)]

FIELD_PREVIEW = 4096
"""Characters of a large text shown before its "show all" button."""

SPAN_FIRST = 200
"""Rows of the span tree rendered with the page (the tree box shows a few dozen at a time)."""

SPAN_CHUNK = 500
"""Rows of the span tree loaded per request after the first ones."""

STEP_PAGE = 200
"""Steps of the audit trail per page."""

_MAX_FINDINGS = 1000
_MAX_TOKENS = 20_000
_TREE_CACHE_SIZE = 16
_HEAT_BUCKETS = 5  # per sign: classes hm-n5 .. hm-0 .. hm-p5
_KINDS = frozenset(
    {"agent", "llm", "tool", "retriever", "chain", "embedding", "reasoning", "guardrail"}
    | {"evaluator", "unknown"}
)
_FIELDS: dict[str, tuple[str, ...]] = {
    "trace": ("input", "output"),
    "span": ("input", "output", "status_message"),
    "step": ("text", "tool_args"),
    "document": ("content",),
}


# ----------------------------------------------------------------------------- span tree


_TreeEntry = tuple[str, int, int]
"""A row of the span tree: span id, depth, number of children."""


def _tree_order(request: Request, session: Session, trace: Trace) -> list[_TreeEntry]:
    """All spans of a trace in tree order (depth first, children by start time), cached.

    The order of a trace is kept per process (least recently used, a few traces) and recomputed
    when the trace changes (its ``updated_ns`` or span count), so paging through a big trace reads
    only the span ids once.
    """
    cache: OrderedDict[tuple[Any, ...], list[_TreeEntry]] | None = getattr(
        request.app.state, "trace_tree_cache", None
    )
    if cache is None:
        cache = OrderedDict()
        request.app.state.trace_tree_cache = cache
    key = (trace.project_id, trace.trace_id, trace.updated_ns, trace.span_count)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    # Core rather than ORM execution: no per-row ORM bookkeeping over up to 100k+ rows.
    rows = (
        session.connection()
        .execute(
            sa.select(Span.span_id, Span.parent_span_id)
            .where(Span.project_id == trace.project_id, Span.trace_id == trace.trace_id)
            .order_by(Span.start_ns, Span.span_id)
        )
        .all()
    )
    known = {span_id for span_id, _ in rows}
    roots: list[str] = []
    children: dict[str, list[str]] = {}
    for span_id, parent in rows:
        if parent is None or parent not in known:
            roots.append(span_id)  # a span whose parent never arrived is shown as a root
        else:
            children.setdefault(parent, []).append(span_id)
    order: list[_TreeEntry] = []
    stack: list[tuple[str, int]] = [(span_id, 0) for span_id in reversed(roots)]
    seen: set[str] = set()
    empty: list[str] = []
    while stack:
        span_id, depth = stack.pop()
        if span_id in seen:  # a parent cycle in hostile input must not loop forever
            continue
        seen.add(span_id)
        kids = children.get(span_id, empty)
        order.append((span_id, depth, len(kids)))
        if kids:
            below = depth + 1
            stack.extend([(kid, below) for kid in reversed(kids)])
    if len(seen) < len(known):  # spans caught in a parent cycle: still listed, as roots
        order.extend((span_id, 0, 0) for span_id in sorted(known - seen))
    cache[key] = order
    while len(cache) > _TREE_CACHE_SIZE:
        cache.popitem(last=False)
    return order


def _trace_window(session: Session, trace: Trace) -> tuple[int, int]:
    start, end = trace.start_ns, trace.end_ns
    if start is None or end is None:
        low, high = session.execute(
            sa.select(sa.func.min(Span.start_ns), sa.func.max(Span.end_ns)).where(
                Span.project_id == trace.project_id, Span.trace_id == trace.trace_id
            )
        ).one()
        start = start if start is not None else (low or 0)
        end = end if end is not None else (high or start)
    return int(start), max(int(end), int(start))


def _span_rows(
    session: Session, trace: Trace, entries: list[_TreeEntry], window: tuple[int, int]
) -> list[dict[str, Any]]:
    """Display rows (JSON-ready) of the spans in ``entries``, in that order."""
    if not entries:
        return []
    columns = (
        Span.span_id,
        Span.parent_span_id,
        Span.kind,
        Span.name,
        Span.start_ns,
        Span.end_ns,
        Span.status,
        Span.model,
    )
    found = {
        row.span_id: row
        for row in session.execute(
            sa.select(*columns).where(
                Span.project_id == trace.project_id,
                Span.trace_id == trace.trace_id,
                Span.span_id.in_([span_id for span_id, _, _ in entries]),
            )
        )
    }
    start, end = window
    total = max(end - start, 1)
    rows = []
    for span_id, depth, children in entries:
        row = found.get(span_id)
        if row is None:
            continue
        left = min(max((row.start_ns - start) / total, 0.0), 1.0)
        width = min(max((row.end_ns - row.start_ns) / total, 0.0), 1.0 - left)
        rows.append(
            {
                "id": row.span_id,
                "parent": row.parent_span_id,
                "depth": depth,
                "children": children,
                "kind": row.kind,
                "name": row.name,
                "status": row.status,
                "model": row.model,
                "duration_ns": row.end_ns - row.start_ns,
                "offset_ns": row.start_ns - start,
                "left": math.floor(left * 100),
                "width": min(math.ceil(width * 100), 100 - math.floor(left * 100)),
            }
        )
    return rows


# ----------------------------------------------------------------------------- text helpers


def _preview(value: str | None, length: int | None) -> dict[str, Any] | None:
    """A field cut to :data:`FIELD_PREVIEW` characters, with its full length."""
    if value is None:
        return None
    size = int(length) if length is not None else len(value)
    return {"text": value[:FIELD_PREVIEW], "length": size, "cut": size > FIELD_PREVIEW}


def _cut(column: Any) -> tuple[Any, Any]:
    return sa.func.substr(column, 1, FIELD_PREVIEW), sa.func.length(column)


def _as_json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _pairs(value: Any) -> list[tuple[str, str]]:
    """A JSON object as sorted ``(key, text)`` rows for a key/value table."""
    if not isinstance(value, dict):
        return []
    return sorted((str(key), _as_json_text(item)) for key, item in value.items())


def _pretty_args(text: str) -> str:
    """Tool arguments pretty-printed when they are JSON, else as recorded."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return text
    if not isinstance(value, dict | list):
        return text
    return json.dumps(value, indent=2, ensure_ascii=False)


# ----------------------------------------------------------------------------- findings


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _curve(value: Any) -> dict[str, Any] | None:
    """SVG geometry of an evidence curve, or None when it is not ``{x: [...], y: [...]}``."""
    if not isinstance(value, dict):
        return None
    xs = [_number(x) for x in value.get("x") or []] if isinstance(value.get("x"), list) else []
    ys = [_number(y) for y in value.get("y") or []] if isinstance(value.get("y"), list) else []
    points = [(x, y) for x, y in zip(xs, ys, strict=False) if x is not None and y is not None]
    if not points or len(xs) != len(ys):
        return None
    width, height, pad = 320.0, 160.0, 32.0
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(0.0, *(p[1] for p in points)), max(1.0, *(p[1] for p in points))
    x_span, y_span = (x_high - x_low) or 1.0, (y_high - y_low) or 1.0

    def place(x: float, y: float) -> tuple[float, float]:
        return (
            round(pad + (x - x_low) / x_span * (width - 2 * pad), 1),
            round(height - pad - (y - y_low) / y_span * (height - 2 * pad), 1),
        )

    placed = [(*place(x, y), x, y) for x, y in points]
    return {
        "width": int(width),
        "height": int(height),
        "pad": pad,
        "points": " ".join(f"{px},{py}" for px, py, _, _ in placed),
        "dots": [{"cx": px, "cy": py, "x": x, "y": y} for px, py, x, y in placed],
        "x_label": str(value.get("x_label") or "x"),
        "y_label": str(value.get("y_label") or "y"),
        "x_low": x_low,
        "x_high": x_high,
        "y_low": y_low,
        "y_high": y_high,
        "bottom": height - pad,
        "right": width - pad,
    }


def _segments(value: Any) -> list[dict[str, Any]]:
    """``{name: total}`` or ``[{"name", "total"}]`` as bars sized against the largest total."""
    pairs: list[tuple[str, float]] = []
    if isinstance(value, dict):
        for key, raw in value.items():
            if (number := _number(raw)) is not None:
                pairs.append((str(key), number))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and (total := _number(item.get("total"))) is not None:
                pairs.append((str(item.get("name", "?")), total))
    peak = max((abs(total) for _, total in pairs), default=0.0) or 1.0
    return [
        {
            "name": name,
            "total": total,
            "width": round(abs(total) / peak * 100),
            "sign": "neg" if total < 0 else "pos",
        }
        for name, total in pairs
    ]


def _heatmap(attribution: Attribution) -> dict[str, Any]:
    """Tokens with a diverging colour bucket each (scores scaled by the largest magnitude)."""
    tokens = attribution.tokens if isinstance(attribution.tokens, list) else []
    scores = attribution.scores if isinstance(attribution.scores, list) else []
    values = [_number(score) for score in scores]
    peak = max((abs(v) for v in values if v is not None), default=0.0) or 1.0
    cells = []
    for position, token in enumerate(tokens[:_MAX_TOKENS]):
        score = values[position] if position < len(values) else None
        bucket = "none" if score is None else _bucket(score / peak)
        cells.append({"text": str(token), "score": score, "bucket": bucket})
    return {
        "id": attribution.id,
        "method": attribution.method,
        "model_id": attribution.model_id,
        "target": attribution.target,
        "tokens": cells,
        "omitted": max(len(tokens) - _MAX_TOKENS, 0),
        "segments": _segments(attribution.segments),
    }


def _bucket(scaled: float) -> str:
    level = round(scaled * _HEAT_BUCKETS)
    if level == 0:
        return "0"
    return f"{'p' if level > 0 else 'n'}{min(abs(level), _HEAT_BUCKETS)}"


_SPECIAL_EVIDENCE = ("claim", "observation", "observation_step", "expected", "found", "paper")


def _finding_view(finding: Finding, attributions: list[Attribution]) -> dict[str, Any]:
    evidence = finding.evidence if isinstance(finding.evidence, dict) else {}
    curve = _curve(evidence.get("curve"))
    segments = _segments(evidence.get("segments"))
    handled = set(_SPECIAL_EVIDENCE)
    if curve is not None:
        handled.add("curve")
    if segments:
        handled.add("segments")
    step = evidence.get("observation_step")
    observation_anchor = None
    if isinstance(step, dict) and isinstance(step.get("span_id"), str):
        observation_anchor = f"step-{step['span_id']}-{step.get('seq', 0)}"
    return {
        "finding": finding,
        "claim": _text_or_none(evidence.get("claim")),
        "observation": _text_or_none(evidence.get("observation")),
        "observation_anchor": observation_anchor,
        "expected": None if "expected" not in evidence else _as_json_text(evidence["expected"]),
        "found": None if "found" not in evidence else _as_json_text(evidence["found"]),
        "paper": _text_or_none(evidence.get("paper")),
        "curve": curve,
        "segments": segments,
        "other": [
            (str(key), _as_json_text(value))
            for key, value in evidence.items()
            if key not in handled
            and not (key in ("claim", "observation", "paper") and _text_or_none(value) is None)
        ],
        "heatmaps": [_heatmap(attribution) for attribution in attributions],
    }


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else _as_json_text(value)


# ----------------------------------------------------------------------------- audit trail


def _trail_page(
    session: Session, trace: Trace, offset: int
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], int]:
    """One page of steps, the documents of its retrieval spans, and the trail's length."""
    in_trace = (Step.project_id == trace.project_id, Step.trace_id == trace.trace_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(Step).where(*in_trace)) or 0
    text, text_len = _cut(Step.text)
    args, args_len = _cut(Step.tool_args)
    rows = session.execute(
        sa.select(
            Step.span_id,
            Step.seq,
            Step.ts_ns,
            Step.type,
            text.label("text"),
            text_len.label("text_len"),
            Step.tool_name,
            args.label("args"),
            args_len.label("args_len"),
            Step.tool_call_id,
            Step.is_error,
            Step.citations,
        )
        .where(*in_trace)
        .order_by(Step.ts_ns, Step.span_id, Step.seq)
        .offset(offset)
        .limit(STEP_PAGE)
    ).all()
    steps = []
    for position, row in enumerate(rows, start=offset + 1):
        args_preview = _preview(row.args, row.args_len)
        if args_preview is not None and not args_preview["cut"]:
            args_preview["text"] = _pretty_args(args_preview["text"])
        citations = row.citations if isinstance(row.citations, list) else []
        steps.append(
            {
                "index": position,
                "span_id": row.span_id,
                "seq": row.seq,
                "anchor": f"step-{row.span_id}-{row.seq}",
                "ts_ns": row.ts_ns,
                "type": row.type,
                "text": _preview(row.text, row.text_len),
                "tool_name": row.tool_name,
                "args": args_preview,
                "tool_call_id": row.tool_call_id,
                "is_error": bool(row.is_error),
                "citations": [str(c) for c in citations],
            }
        )
    retrieval_spans = {step["span_id"] for step in steps if step["type"] == "RETRIEVAL"}
    cited = {c for step in steps for c in step["citations"]}
    documents = _documents(session, trace, retrieval_spans, cited)
    return steps, documents, int(total)


def _documents(
    session: Session, trace: Trace, span_ids: set[str], doc_ids: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """Documents of the given retrieval spans and documents with the given ids, by span."""
    if not span_ids and not doc_ids:
        return {}
    content, content_len = _cut(Document.content)
    conditions = []
    if span_ids:
        conditions.append(Document.span_id.in_(sorted(span_ids)))
    if doc_ids:
        conditions.append(Document.doc_id.in_(sorted(doc_ids)))
    rows = session.execute(
        sa.select(
            Document.span_id,
            Document.rank,
            Document.doc_id,
            Document.score,
            content.label("content"),
            content_len.label("content_len"),
            Document.source,
            Document.metadata_,
        )
        .where(
            Document.project_id == trace.project_id,
            Document.trace_id == trace.trace_id,
            sa.or_(*conditions),
        )
        .order_by(Document.span_id, Document.rank)
    ).all()
    by_span: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_span.setdefault(row.span_id, []).append(
            {
                "span_id": row.span_id,
                "rank": row.rank,
                "doc_id": row.doc_id,
                "score": _number(row.score),
                "content": _preview(row.content, row.content_len),
                "source": row.source,
                "metadata": _pairs(row.metadata_),
                "anchor": f"src-{row.span_id}-{row.rank}",
            }
        )
    return by_span


def _link_citations(
    steps: list[dict[str, Any]], documents: dict[str, list[dict[str, Any]]]
) -> None:
    """Give each answer its cited documents; a citation of no retrieved document stays bare."""
    by_doc_id: dict[str, dict[str, Any]] = {}
    for docs in documents.values():
        for item in docs:
            if item["doc_id"] is not None:
                by_doc_id.setdefault(item["doc_id"], item)
    on_page = {step["span_id"] for step in steps if step["type"] == "RETRIEVAL"}
    for step in steps:
        links = []
        for number, doc_id in enumerate(step["citations"], start=1):
            doc: dict[str, Any] | None = by_doc_id.get(doc_id)
            card = f"cite-{step['span_id']}-{step['seq']}-{number}"
            target = doc["anchor"] if doc and doc["span_id"] in on_page else card
            links.append({"doc_id": doc_id, "doc": doc, "card": card, "target": target})
        step["citation_links"] = links
        step["documents"] = (
            documents.get(step["span_id"], []) if step["type"] == "RETRIEVAL" else []
        )


# ----------------------------------------------------------------------------- routes


def _resolve(session: Session, principal: Principal, ref: str) -> Trace:
    try:
        trace_id = resolve_trace_id(session, project_id=principal.project_id, ref=ref)
    except (TraceNotFoundError, AmbiguousTraceIdError) as exc:
        raise _MissingError(str(exc)) from exc
    trace = session.get(Trace, (principal.project_id, trace_id))
    if trace is None:  # deleted between the two reads
        raise _MissingError(f"no trace with id {trace_id!r}")
    return trace


class _MissingError(Exception):
    """The trace reference names no trace (or several)."""


def _page_offset(value: int, total: int) -> int:
    if total <= 0:
        return 0
    return max(min(value - value % STEP_PAGE, (total - 1) // STEP_PAGE * STEP_PAGE), 0)


@router.get("/traces/{ref}", response_class=HTMLResponse)
def trace_page(
    request: Request,
    ref: str,
    *,
    principal: PageCaller,
    session: DbSession,
    steps: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="first step of the audit trail page")
    ] = 0,
) -> HTMLResponse:
    """A trace: header, span tree with waterfall, audit trail with sources, and findings."""
    try:
        trace = _resolve(session, principal, ref)
    except _MissingError as exc:
        return render(
            request, "trace_missing.html", status_code=404, principal=principal, reason=str(exc)
        )
    window = _trace_window(session, trace)
    order = _tree_order(request, session, trace)
    span_rows = _span_rows(session, trace, order[:SPAN_FIRST], window)
    offset = _page_offset(steps, trace.step_count or 0)
    trail, documents, step_total = _trail_page(session, trace, offset)
    if step_total and offset >= step_total:
        offset = _page_offset(offset, step_total)
        trail, documents, step_total = _trail_page(session, trace, offset)
    _link_citations(trail, documents)

    findings = list(
        session.scalars(
            sa.select(Finding)
            .where(Finding.project_id == trace.project_id, Finding.trace_id == trace.trace_id)
            .order_by(Finding.created_ns, Finding.id)
            .limit(_MAX_FINDINGS)
        )
    )
    attributions: dict[int, list[Attribution]] = {}
    if findings:
        for attribution in session.scalars(
            sa.select(Attribution)
            .where(
                Attribution.project_id == trace.project_id,
                Attribution.finding_id.in_([f.id for f in findings]),
            )
            .order_by(Attribution.id)
        ):
            attributions.setdefault(attribution.finding_id or 0, []).append(attribution)
    views = [_finding_view(f, attributions.get(f.id, [])) for f in findings]
    step_keys = {(step["span_id"], step["seq"]) for step in trail}
    by_step: dict[tuple[str, int], list[dict[str, Any]]] = {}
    trace_level = []
    for view in views:
        key = (view["finding"].step_span_id, view["finding"].step_seq)
        if key[0] is not None and (key[0], key[1] or 0) in step_keys:
            by_step.setdefault((key[0], key[1] or 0), []).append(view)
        else:
            trace_level.append(view)
    for step in trail:
        step["findings"] = by_step.get((step["span_id"], step["seq"]), [])

    next_url = None
    if len(order) > SPAN_FIRST:
        next_url = _tree_url(trace.trace_id, SPAN_FIRST)
    page_data = {
        "trace_id": trace.trace_id,
        "span_total": len(order),
        "next": next_url,
        "span_url": f"/api/v1/ui/traces/{trace.trace_id}/spans/",
    }
    flagged = [view["finding"] for view in views if view["finding"].status == "flagged"]
    return render(
        request,
        "trace.html",
        principal=principal,
        nav="traces",
        trace=trace,
        window=window,
        span_rows=span_rows,
        span_total=len(order),
        next_url=next_url,
        trail=trail,
        step_offset=offset,
        step_total=step_total,
        step_page=STEP_PAGE,
        findings=views,
        trace_findings=trace_level,
        flagged=flagged,
        page_data=page_data,
        kinds=_KINDS,
        session_path=quote(trace.session_id or "", safe=""),
        metadata=_pairs(trace.metadata_),
        trace_input=_preview(trace.input, None),
        trace_output=_preview(trace.output, None),
    )


def _tree_url(trace_id: str, offset: int, limit: int = SPAN_CHUNK) -> str:
    return f"/api/v1/ui/traces/{trace_id}/tree?offset={offset}&limit={limit}"


def _trace_or_404(session: Session, principal: Principal, trace_id: str) -> Trace:
    trace = session.get(Trace, (principal.project_id, trace_id))
    if trace is None:
        raise HTTPException(status_code=404, detail=f"no trace with id {trace_id[:64]!r}")
    return trace


@router.get("/api/v1/ui/traces/{trace_id}/tree")
def span_tree_chunk(
    request: Request,
    trace_id: str,
    *,
    principal: ApiCaller,
    session: DbSession,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = SPAN_CHUNK,
) -> dict[str, Any]:
    """Rows of the trace page's span tree in tree order, ``limit`` from ``offset``."""
    trace = _trace_or_404(session, principal, trace_id)
    order = _tree_order(request, session, trace)
    rows = _span_rows(session, trace, order[offset : offset + limit], _trace_window(session, trace))
    end = offset + limit
    return {
        "total": len(order),
        "offset": offset,
        "rows": rows,
        "next": _tree_url(trace_id, end, limit) if end < len(order) else None,
    }


@router.get("/api/v1/ui/traces/{trace_id}/spans/{span_id}")
def span_detail(
    trace_id: str,
    span_id: str,
    *,
    principal: ApiCaller,
    session: DbSession,
) -> dict[str, Any]:
    """One span for the details panel; long texts cut at ``FIELD_PREVIEW`` characters."""
    _trace_or_404(session, principal, trace_id)
    span = session.get(Span, (principal.project_id, span_id))
    if span is None or span.trace_id != trace_id:
        raise HTTPException(status_code=404, detail=f"no span {span_id[:32]!r} in this trace")
    attributes = span.attributes if isinstance(span.attributes, dict) else {}
    events = span.events if isinstance(span.events, list) else []
    return {
        "id": span.span_id,
        "parent": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "status": span.status,
        "status_message": _preview(span.status_message, None),
        "model": span.model,
        "provider": span.provider,
        "start_ns": span.start_ns,
        "duration_ns": span.end_ns - span.start_ns,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "reasoning_tokens": span.reasoning_tokens,
        "input": _preview(span.input, None),
        "output": _preview(span.output, None),
        "attributes": [
            {"key": str(key), "value": _preview(_as_json_text(value), None)}
            for key, value in sorted(attributes.items())
        ],
        "events": [
            {
                "name": str(event.get("name", "")),
                "ts_ns": event.get("ts_ns"),
                "attributes": _preview(_as_json_text(event.get("attributes", {})), None),
            }
            for event in events
            if isinstance(event, dict)
        ],
    }


@router.get("/api/v1/ui/traces/{trace_id}/field")
def full_field(
    trace_id: str,
    *,
    principal: ApiCaller,
    session: DbSession,
    of: Annotated[str, Query(description="trace, span, step, document or attribute")],
    span_id: Annotated[str, Query(description="the span's id (a trace's id for of=trace)")],
    name: Annotated[
        str, Query(description="the field (input, output, text, content ...) or attribute key")
    ],
    seq: Annotated[
        int,
        Query(ge=0, le=INT64_MAX, description="the step's seq, or the document's rank"),
    ] = 0,
) -> dict[str, Any]:
    """The whole value of one long text field of a span, step or document, or of an attribute."""
    if of == "attribute":
        _trace_or_404(session, principal, trace_id)
        span = session.get(Span, (principal.project_id, span_id))
        attributes = span.attributes if span is not None else None
        if span is None or span.trace_id != trace_id or not isinstance(attributes, dict):
            raise HTTPException(status_code=404, detail="no such span in this trace")
        if name not in attributes:
            raise HTTPException(status_code=404, detail="the span has no such attribute")
        text = _as_json_text(attributes[name])
        return {"of": of, "name": name, "value": text, "length": len(text)}
    if name not in _FIELDS.get(of, ()):
        raise HTTPException(
            status_code=400,
            detail=f"unknown field {of[:20]!r}/{name[:40]!r}: use one of {_FIELDS}",
        )
    _trace_or_404(session, principal, trace_id)
    row: Trace | Span | Step | Document | None
    if of == "trace":
        row = session.get(Trace, (principal.project_id, span_id))
    elif of == "span":
        row = session.get(Span, (principal.project_id, span_id))
    elif of == "step":
        row = session.get(Step, (principal.project_id, span_id, seq))
    else:
        row = session.get(Document, (principal.project_id, span_id, seq))
    if row is None or row.trace_id != trace_id:
        raise HTTPException(status_code=404, detail=f"no such {of} in this trace")
    value = getattr(row, name)
    return {"of": of, "name": name, "value": value, "length": len(value or "")}
