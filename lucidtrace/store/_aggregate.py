"""Recompute trace rows from their stored spans and steps, and drop superseded steps.

Both run after every ingest over each trace the batch touched, reading what is *stored* rather
than what the batch carried: spans arriving in any order, in any batches, give the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from lucidtrace.store._conventions import TRACE_FIELD_KEYS, trace_fields
from lucidtrace.store._mapper import MappedSpan, StepFact, step_fact, superseded_steps
from lucidtrace.store.models import Base

CHUNK = 500
"""Ids per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits."""

_spans = Base.metadata.tables["spans"]
_steps = Base.metadata.tables["steps"]
_traces = Base.metadata.tables["traces"]


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """Slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def settle_steps(
    conn: sa.Connection, project_id: str, trace_ids: Sequence[str]
) -> tuple[dict[str, str], dict[str, int]]:
    """Delete the steps :func:`superseded_steps` rules out in these traces.

    Reads only the steps the rule can involve, without their text: the ACTIONs proposed on
    spans other than ``TOOL`` spans and the ANSWERs (a few per trace), then the executed ACTIONs
    that share a tool call id or a tool name with a proposal. The cost of a batch does not grow
    with the number of tool calls its traces hold.

    Returns:
        The text of each trace's last remaining ANSWER, and how many steps each trace lost.
    """
    by_trace: dict[str, list[StepFact]] = {}
    has_text: dict[tuple[str, int], bool] = {}
    for ids in chunks(trace_ids):
        query = _fact_query().where(
            _steps.c.project_id == project_id,
            _steps.c.trace_id.in_(ids),
            sa.or_(
                _steps.c.type == "ANSWER",
                sa.and_(_steps.c.type == "ACTION", _spans.c.kind != "TOOL"),
            ),
        )
        for row in conn.execute(query):
            by_trace.setdefault(row.trace_id, []).append(StepFact(*row[1:11]))
            has_text[(row.span_id, row.seq)] = not row.no_text
    _add_executed(conn, project_id, by_trace)
    dropped: set[tuple[str, int]] = set()
    deleted: dict[str, int] = {}
    for trace_id, facts in by_trace.items():
        lost = superseded_steps(facts)
        if lost:
            dropped |= lost
            deleted[trace_id] = len(lost)
    if dropped:
        conn.execute(
            sa.delete(_steps).where(
                _steps.c.project_id == project_id,
                _steps.c.span_id == sa.bindparam("b_span"),
                _steps.c.seq == sa.bindparam("b_seq"),
            ),
            [{"b_span": span_id, "b_seq": seq} for span_id, seq in sorted(dropped)],
        )
    finals: dict[tuple[str, int], str] = {}
    for trace_id, facts in by_trace.items():
        answers = [
            f
            for f in facts
            if f.type == "ANSWER"
            and (f.span_id, f.seq) not in dropped
            and has_text[(f.span_id, f.seq)]
        ]
        if answers:
            final = max(answers, key=lambda f: (f.ts_ns, f.span_id, f.seq))
            finals[(final.span_id, final.seq)] = trace_id
    last: dict[str, str] = {}
    keys = sorted(finals)
    for start in range(0, len(keys), CHUNK):
        for span_id, seq, text in conn.execute(
            sa.select(_steps.c.span_id, _steps.c.seq, _steps.c.text).where(
                _steps.c.project_id == project_id,
                sa.tuple_(_steps.c.span_id, _steps.c.seq).in_(keys[start : start + CHUNK]),
            )
        ):
            last[finals[(span_id, seq)]] = text or ""
    return last, deleted


def _fact_query() -> sa.Select[Any]:
    """Steps with what :class:`StepFact` needs of them and of their span (no text)."""
    return sa.select(
        _steps.c.trace_id,
        _steps.c.span_id,
        _steps.c.seq,
        _steps.c.type,
        _steps.c.ts_ns,
        _steps.c.tool_call_id,
        _steps.c.tool_name,
        _steps.c.tool_args,
        _spans.c.kind,
        _spans.c.start_ns,
        _spans.c.end_ns,
        _steps.c.text.is_(None).label("no_text"),
    ).join(
        _spans,
        sa.and_(
            _spans.c.project_id == _steps.c.project_id,
            _spans.c.span_id == _steps.c.span_id,
        ),
    )


def _add_executed(
    conn: sa.Connection, project_id: str, by_trace: dict[str, list[StepFact]]
) -> None:
    """Add the executed ACTIONs that could supersede a proposal among ``by_trace``'s facts."""
    for trace_id, facts in by_trace.items():
        proposals = [f for f in facts if f.type == "ACTION"]
        if not proposals:
            continue
        # The rule links a proposal with a call id to the executed ACTION of that id, or to one
        # without an id of the same tool and arguments; a proposal without an id by tool and
        # arguments alone.
        call_ids = sorted({f.tool_call_id for f in proposals if f.tool_call_id})
        no_id = sa.or_(_steps.c.tool_call_id.is_(None), _steps.c.tool_call_id == "")
        linked: list[sa.ColumnElement[bool]] = [_steps.c.tool_call_id.in_(call_ids)]
        for with_id in (True, False):
            names = {f.tool_name for f in proposals if bool(f.tool_call_id) is with_id}
            known = sorted(name for name in names if name is not None)
            by_name = sa.or_(
                _steps.c.tool_name.in_(known),
                _steps.c.tool_name.is_(None) if None in names else sa.false(),
            )
            linked.append(sa.and_(no_id, by_name) if with_id else by_name)
        query = _fact_query().where(
            _steps.c.project_id == project_id,
            _steps.c.trace_id == trace_id,
            _steps.c.type == "ACTION",
            _spans.c.kind == "TOOL",
            sa.or_(*linked),
        )
        facts.extend(StepFact(*row[1:11]) for row in conn.execute(query))


def recompute_traces(
    conn: sa.Connection,
    project_id: str,
    trace_ids: Sequence[str],
    now_ns: int,
    answers: dict[str, str],
) -> list[dict[str, Any]]:
    """The values of these traces' rows, from their stored spans and steps.

    ``answers`` holds each trace's last ANSWER text (see :func:`settle_steps`): a trace's output
    when its root span has none. Write them with :func:`update_traces`.
    """
    updates: list[dict[str, Any]] = []
    for ids in chunks(trace_ids):
        updates.extend(_aggregate(conn, project_id, ids, now_ns, answers))
    return updates


def update_traces(conn: sa.Connection, updates: list[dict[str, Any]]) -> None:
    """Write trace rows computed by :func:`recompute_traces` or :func:`aggregate_new_trace`."""
    if updates:
        values: dict[str, Any] = {
            name: sa.bindparam(name) for name in updates[0] if not name.startswith("b_")
        }
        conn.execute(
            sa.update(_traces)
            .where(
                _traces.c.project_id == sa.bindparam("b_project"),
                _traces.c.trace_id == sa.bindparam("b_trace"),
            )
            .values(values),
            updates,
        )


def _aggregate(
    conn: sa.Connection,
    project_id: str,
    ids: Sequence[str],
    now_ns: int,
    answers: dict[str, str],
) -> list[dict[str, Any]]:
    in_scope = (_spans.c.project_id == project_id, _spans.c.trace_id.in_(ids))
    # One row per (trace, model): the trace's totals are the sums of its rows.
    totals: dict[str, list[int]] = {}
    models: dict[str, list[str]] = {}
    for trace_id, model, start, end, count, in_tok, out_tok, reas_tok in conn.execute(
        sa.select(
            _spans.c.trace_id,
            _spans.c.model,
            sa.func.min(_spans.c.start_ns),
            sa.func.max(_spans.c.end_ns),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(_spans.c.input_tokens), 0),
            sa.func.coalesce(sa.func.sum(_spans.c.output_tokens), 0),
            sa.func.coalesce(sa.func.sum(_spans.c.reasoning_tokens), 0),
        )
        .where(*in_scope)
        .group_by(_spans.c.trace_id, _spans.c.model)
    ):
        if model is not None:
            models.setdefault(trace_id, []).append(model)
        now = totals.get(trace_id)
        if now is None:
            totals[trace_id] = [start, end, count, in_tok, out_tok, reas_tok]
        else:
            now[0], now[1] = min(now[0], start), max(now[1], end)
            for i, value in enumerate((count, in_tok, out_tok, reas_tok), start=2):
                now[i] += value
    parent = _spans.alias("parent")
    roots: dict[str, Any] = {}
    for row in conn.execute(
        sa.select(
            _spans.c.trace_id,
            _spans.c.span_id,
            _spans.c.name,
            _spans.c.status,
            _spans.c.start_ns,
            _spans.c.input,
            _spans.c.output,
        )
        .outerjoin(
            parent,
            sa.and_(
                parent.c.project_id == _spans.c.project_id,
                parent.c.trace_id == _spans.c.trace_id,
                parent.c.span_id == _spans.c.parent_span_id,
            ),
        )
        .where(*in_scope, parent.c.span_id.is_(None))
    ):
        best = roots.get(row.trace_id)
        if best is None or (row.start_ns, row.span_id) < (best.start_ns, best.span_id):
            roots[row.trace_id] = row
    step_counts: dict[str, int] = dict(
        conn.execute(
            sa.select(_steps.c.trace_id, sa.func.count())
            .where(_steps.c.project_id == project_id, _steps.c.trace_id.in_(ids))
            .group_by(_steps.c.trace_id)
        ).all()
    )
    fields = _trace_fields(conn, project_id, ids, roots)
    return [
        trace_update(
            project_id,
            trace_id,
            now_ns,
            root=roots.get(trace_id),
            totals=values,
            models=models.get(trace_id, []),
            step_count=step_counts.get(trace_id, 0),
            fields=fields.get(trace_id, {}),
            last_answer=answers.get(trace_id),
        )
        for trace_id, values in totals.items()
    ]


_FIELD_ATTRS = tuple(dict.fromkeys(key for keys in TRACE_FIELD_KEYS.values() for key in keys))


def _field_values(dialect: str) -> sa.ColumnElement[Any]:
    """The trace-field attributes of a span as one JSON array (one JSON parse per span)."""
    if dialect == "postgresql":
        items = [_spans.c.attributes[key] for key in _FIELD_ATTRS]
        return sa.func.jsonb_build_array(*items, type_=sa.JSON)
    paths = [sa.literal(f'$."{key}"') for key in _FIELD_ATTRS]
    return sa.func.json_extract(_spans.c.attributes, *paths, type_=sa.JSON)


def _trace_fields(
    conn: sa.Connection, project_id: str, ids: Sequence[str], roots: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Trace-level fields from any span of each trace: the root's win, then earlier spans'."""
    values_column = _field_values(conn.dialect.name)
    per_trace: dict[str, list[tuple[tuple[int, int, str], dict[str, Any]]]] = {}
    for row in conn.execute(
        sa.select(_spans.c.trace_id, _spans.c.span_id, _spans.c.start_ns, values_column).where(
            _spans.c.project_id == project_id, _spans.c.trace_id.in_(ids)
        )
    ):
        found_values = row[3] or ()
        values = {k: v for k, v in zip(_FIELD_ATTRS, found_values, strict=False) if v is not None}
        if not values:
            continue
        root = roots.get(row.trace_id)
        is_root = root is not None and root.span_id == row.span_id
        order = (0 if is_root else 1, row.start_ns, row.span_id)
        per_trace.setdefault(row.trace_id, []).append((order, trace_fields(values, [])))
    return {trace_id: merge_fields(entries) for trace_id, entries in per_trace.items()}


def merge_fields(entries: list[tuple[tuple[int, int, str], dict[str, Any]]]) -> dict[str, Any]:
    """Merge the trace fields of a trace's spans: the root's first, then by start time.

    Scalars take the first value; tags are the union in that order; metadata keys the first value.
    """
    entries.sort(key=lambda entry: entry[0])
    result: dict[str, Any] = {}
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    for _, found in entries:
        for name in ("session_id", "user_id", "name"):
            if name in found and name not in result:
                result[name] = found[name]
        tags.extend(t for t in found.get("tags", []) if t not in tags)
        metadata = {**found.get("metadata", {}), **metadata}  # earlier entries win
    result["tags"] = tags
    result["metadata"] = metadata
    return result


def _trace_status(root_status: str | None) -> str:
    """A trace's status from its root span's: ``error``, else ``ok`` (``unset``: no span)."""
    if root_status is None:
        return "unset"
    return "error" if root_status == "error" else "ok"


def trace_update(
    project_id: str,
    trace_id: str,
    now_ns: int,
    *,
    root: Any,
    totals: Sequence[int],
    models: Iterable[str],
    step_count: int,
    fields: dict[str, Any],
    last_answer: str | None,
) -> dict[str, Any]:
    """The values of one trace row (``root`` has name, span_id, status, input, output)."""
    start, end, span_count, in_tok, out_tok, reas_tok = totals
    output = root.output if root is not None else None
    return {
        "b_project": project_id,
        "b_trace": trace_id,
        "name": fields.get("name") or (root.name if root is not None else None),
        "root_span_id": root.span_id if root is not None else None,
        "session_id": fields.get("session_id"),
        "user_id": fields.get("user_id"),
        # A run succeeded unless its root span failed: OpenTelemetry leaves successful spans
        # UNSET, which would read as "unknown" in a list of runs.
        "status": _trace_status(root.status if root is not None else None),
        "start_ns": start,
        "end_ns": end,
        "input": root.input if root is not None else None,
        "output": output if output is not None else last_answer,
        "tags": fields.get("tags", []),
        "metadata": fields.get("metadata", {}),
        "models": sorted(set(models)),
        "input_tokens": int(in_tok),
        "output_tokens": int(out_tok),
        "reasoning_tokens": int(reas_tok),
        "span_count": int(span_count),
        "step_count": int(step_count),
        "updated_ns": now_ns,
    }


def trace_row(update: dict[str, Any]) -> dict[str, Any]:
    """The values of :func:`trace_update` as an insert of the trace's row."""
    row = {name: value for name, value in update.items() if not name.startswith("b_")}
    row["project_id"] = update["b_project"]
    row["trace_id"] = update["b_trace"]
    return row


class RootSpan(NamedTuple):
    """The columns of a trace's root span that its row takes."""

    span_id: str
    name: str
    status: str
    input: str | None
    output: str | None


def aggregate_new_trace(
    project_id: str, trace_id: str, items: Sequence[MappedSpan], now_ns: int
) -> tuple[dict[str, Any], set[tuple[str, int]]]:
    """Trace row values and superseded steps of a trace that had no stored span before.

    Its stored spans are exactly ``items``, so the row is computed from them without a query;
    the result is what :func:`recompute_traces` and :func:`settle_steps` give once stored.
    """
    spans = [item.span for item in items]
    ids = {span["span_id"] for span in spans}
    roots = [span for span in spans if span["parent_span_id"] not in ids]
    first = min(roots, key=lambda span: (span["start_ns"], span["span_id"])) if roots else None
    root = (
        None
        if first is None
        else RootSpan(
            first["span_id"], first["name"], first["status"], first["input"], first["output"]
        )
    )
    facts = [
        step_fact(step, item.span)
        for item in items
        for step in item.steps
        if step["type"] in ("ACTION", "ANSWER")
    ]
    dropped = superseded_steps(facts)
    answers = [
        step
        for item in items
        for step in item.steps
        if step["type"] == "ANSWER"
        and step["text"] is not None
        and (step["span_id"], step["seq"]) not in dropped
    ]
    last = max(answers, key=lambda s: (s["ts_ns"], s["span_id"], s["seq"])) if answers else None
    entries = [
        (
            (
                0 if root is not None and span["span_id"] == root.span_id else 1,
                span["start_ns"],
                span["span_id"],
            ),
            item.trace_fields,
        )
        for item, span in zip(items, spans, strict=True)
        if item.trace_fields
    ]
    totals = (
        min(span["start_ns"] for span in spans),
        max(span["end_ns"] for span in spans),
        len(spans),
        sum(span["input_tokens"] or 0 for span in spans),
        sum(span["output_tokens"] or 0 for span in spans),
        sum(span["reasoning_tokens"] or 0 for span in spans),
    )
    update = trace_update(
        project_id,
        trace_id,
        now_ns,
        root=root,
        totals=totals,
        models=[span["model"] for span in spans if span["model"] is not None],
        step_count=sum(len(item.steps) for item in items) - len(dropped),
        fields=merge_fields(entries) if entries else {},
        last_answer=None if last is None else last["text"],
    )
    return update, dropped
