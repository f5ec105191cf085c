"""The mapper core: one span record in, one span row with its steps and documents out.

The core makes the record safe to store (:mod:`lucidtrace.store._jsonattr`), resolves the span
kind, runs the convention readers of :data:`READERS` in order, and turns what they found into rows.
Every problem met on the way (a malformed convention attribute, a value re-encoded for the
database, an over-long identifier) is listed under :data:`PROBLEMS_KEY` in the span's stored
attributes; the raw attributes themselves are always kept whole.

**Duplicate steps.** Two steps can describe one event, and :func:`superseded_steps` decides
which one stays. It runs over a whole trace (at ingest, over every stored step of each touched
trace), so the result does not depend on the order in which spans arrive:

* an ACTION *proposed* by a model (an ACTION on any span other than a ``TOOL`` span: a
  ``tool_call`` part or ReAct ``Action:`` text) is dropped when a ``TOOL`` span of the same trace
  records the executed ACTION: the two are linked by ``tool_call_id`` when both carry one, else by
  tool name and arguments (compared as parsed JSON). The executed ACTION wins because it carries
  what really ran, its result and its timing; a proposal that never ran stays in the trail.
* an ``AGENT`` span's final output is its ANSWER (placed at the span's end) only when no explicit
  ANSWER (an answer event, ``Final Answer:`` text) was given while that agent ran.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from lucidtrace.store._conventions import (
    Reader,
    SpanDraft,
    SpanView,
    StepDraft,
    resolve_kind,
    trace_fields,
)
from lucidtrace.store._genai_legacy import read_genai_event, read_genai_legacy
from lucidtrace.store._jsonattr import (
    attributes_to_jsonable,
    clean_row,
    clean_text,
    may_decode_unsafe,
)
from lucidtrace.store._openinference import read_openinference
from lucidtrace.store._openllmetry import read_openllmetry
from lucidtrace.store._readers import read_genai, read_lucidtrace
from lucidtrace.store._records import STATUS_CODES, SpanEvent, SpanRecord

PROBLEMS_KEY = "lucidtrace.ingest.problems"
"""Attribute under which a stored span lists what the mapper found malformed or re-encoded."""

READERS: tuple[tuple[str, Reader], ...] = (
    ("lucidtrace", read_lucidtrace),
    ("openinference", read_openinference),
    ("genai", read_genai),
    ("genai_event", read_genai_event),
    ("genai_legacy", read_genai_legacy),
    ("openllmetry", read_openllmetry),
)
"""Every convention reader, highest precedence first."""

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_LIMITS = {"name": 500, "model": 200, "provider": 100, "scope": 200}
_STEP_LIMITS = {"tool_name": 200, "tool_call_id": 200}
_DOC_ID_LIMIT = 500
_CLEAN_COLUMNS = frozenset({"attributes", "events", "resource"})


@dataclass(frozen=True)
class MappedSpan:
    """What one span becomes in the store.

    Attributes:
        span: the values of the span's row (all columns but ``project_id`` and ``ingested_ns``).
        steps: its steps' rows (without ``project_id``), in order.
        documents: its documents' rows (without ``project_id``), by rank (1 = first retrieved).
        trace_fields: trace-level fields the span carries (session_id, user_id, tags, metadata,
            name).
        problems: what was malformed or re-encoded (also stored in the span's attributes).
    """

    span: dict[str, Any]
    steps: tuple[dict[str, Any], ...]
    documents: tuple[dict[str, Any], ...]
    trace_fields: dict[str, Any]
    problems: tuple[str, ...]


def id_error(record: SpanRecord) -> str | None:
    """Why a record's ids cannot be stored, or ``None`` when they can."""
    if not isinstance(record.trace_id, str) or not _TRACE_ID.fullmatch(record.trace_id.lower()):
        return f"trace id {record.trace_id!r:.40} is not 32 hex digits"
    if not isinstance(record.span_id, str) or not _SPAN_ID.fullmatch(record.span_id.lower()):
        return f"span id {record.span_id!r:.40} is not 16 hex digits"
    if record.trace_id.strip("0") == "" or record.span_id.strip("0") == "":
        return "all-zero trace or span id"
    return None


_INT64_END = 2**63
_TIME_NAMES = (("start_ns", "start_time_unix_nano"), ("end_ns", "end_time_unix_nano"))


def record_error(record: SpanRecord) -> str | None:
    """Why a record cannot be stored (its ids or times), or ``None`` when it can.

    Times are Unix nanoseconds in the store's 64-bit integer columns: a start, end or event time
    at or beyond 2**63 (or negative) refuses the span, as the batch wire format does.
    """
    error = id_error(record)
    if error is not None:
        return error
    for attribute, otlp_name in _TIME_NAMES:
        value = getattr(record, attribute)
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{attribute} {value!r:.40} is not an integer (Unix nanoseconds)"
        if not 0 <= value < _INT64_END:
            where = "beyond" if value > 0 else "below"
            return f"{otlp_name} ({attribute}) {value} is {where} int64 (Unix nanoseconds)"
    for event in record.events:
        ts = event.ts_ns
        if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < _INT64_END:
            return f"event {str(event.name)!r:.40}: time_unix_nano {ts!r:.40} is beyond int64"
    return None


def split_duplicates(
    records: Iterable[SpanRecord],
) -> tuple[list[SpanRecord], list[SpanRecord], list[tuple[SpanRecord, str]]]:
    """One record per span id of a batch whose records :func:`record_error` accepted.

    A later record with the span id of an earlier one of the same trace replaces it (the
    earlier one is returned as replaced); one of another trace is refused, since a span id
    names one span of a project.

    Returns:
        The records to store (in first-seen order), the replaced ones, and the refused ones
        with the reason.
    """
    kept: dict[str, SpanRecord] = {}
    replaced: list[SpanRecord] = []
    refused: list[tuple[SpanRecord, str]] = []
    for record in records:
        span_id = record.span_id.lower()
        earlier = kept.get(span_id)
        if earlier is not None:
            if earlier.trace_id.lower() != record.trace_id.lower():
                refused.append(
                    (
                        record,
                        f"span id {span_id} is already used by trace "
                        f"{earlier.trace_id.lower()} in this request",
                    )
                )
                continue
            replaced.append(earlier)
        kept[span_id] = record
    return list(kept.values()), replaced, refused


def screen_records(
    records: Iterable[SpanRecord],
) -> tuple[list[SpanRecord], list[SpanRecord], list[tuple[SpanRecord, str]]]:
    """The records of a batch that can be stored, one per span id.

    Returns:
        As :func:`split_duplicates`: the records to store, the replaced ones, and the refused
        ones with the reason: first those :func:`record_error` refuses, then the span ids
        already used by another trace of the batch.
    """
    valid: list[SpanRecord] = []
    invalid: list[tuple[SpanRecord, str]] = []
    for record in records:
        error = record_error(record)
        if error is None:
            valid.append(record)
        else:
            invalid.append((record, error))
    kept, replaced, refused = split_duplicates(valid)
    return kept, replaced, invalid + refused


def derive_span(record: SpanRecord) -> MappedSpan:
    """Map one span record to its rows (pure: no database).

    Raises:
        ValueError: when the record's trace or span id is not valid hex.
    """
    error = id_error(record)
    if error is not None:
        raise ValueError(error)
    return derive_valid_span(record)


def derive_valid_span(record: SpanRecord) -> MappedSpan:
    """:func:`derive_span` of a record whose ids :func:`id_error` accepted."""
    problems: list[str] = []
    record = _safe_record(record, problems)
    view = SpanView(record, record.attributes, problems)
    draft = SpanDraft(kind=resolve_kind(view))
    for name, reader in READERS:
        try:
            reader(view, draft)
        except Exception as exc:
            problems.append(f"reader {name} failed: {type(exc).__name__}: {exc}"[:300])
    if draft.final_output and not any(s.type == "ANSWER" for s in draft.steps):
        draft.steps.append(StepDraft(record.end_ns, "ANSWER", text=draft.final_output))
    fields = trace_fields(record.attributes, problems)
    return _rows(record, draft, fields, problems)


def _safe_record(record: SpanRecord, problems: list[str]) -> SpanRecord:
    parent = record.parent_span_id
    if parent is not None and not (isinstance(parent, str) and _SPAN_ID.fullmatch(parent.lower())):
        problems.append(f"parent span id {parent!r:.40} is not 16 hex digits; stored as a root")
        parent = None
    status = str(record.status_code).lower()
    if status not in STATUS_CODES:
        problems.append(f"status {record.status_code!r:.40} unknown; stored as unset")
        status = "unset"
    events = tuple(
        SpanEvent(
            clean_text(str(e.name), problems, where="event name"),
            int(e.ts_ns),
            attributes_to_jsonable(e.attributes, problems, where=f"event {e.name}"),
        )
        for e in record.events
    )
    message = record.status_message
    return SpanRecord(
        trace_id=record.trace_id.lower(),
        span_id=record.span_id.lower(),
        parent_span_id=parent.lower() if parent else None,
        name=clean_text(str(record.name), problems, where="span name"),
        kind=str(record.kind),
        start_ns=int(record.start_ns),
        end_ns=int(record.end_ns),
        status_code=status,
        status_message=None if message is None else clean_text(str(message), problems),
        attributes=attributes_to_jsonable(record.attributes, problems, where="attributes"),
        events=events,
        resource=attributes_to_jsonable(record.resource, problems, where="resource"),
        scope=None if record.scope is None else clean_text(str(record.scope), problems),
    )


def _fit(value: str | None, limit: int, problems: list[str], where: str) -> str | None:
    if value is None or len(value) <= limit:
        return value
    problems.append(f"{where}: {len(value)} characters, cut to {limit} (full value in attributes)")
    return value[:limit]


_MAX_COUNT = 2**53
"""Token counts at or above this are not counted: far beyond any real count, and below it the
sums of a trace's spans stay within the 64-bit columns (and exact in JavaScript)."""


def _bigint(value: int | None, problems: list[str], where: str) -> int | None:
    """``value`` when it is a plausible count, else None (the raw attribute keeps it)."""
    if value is None or -_MAX_COUNT < value < _MAX_COUNT:
        return value
    problems.append(f"{where}: {str(value)[:40]} is beyond 2**53; not counted (kept in attributes)")
    return None


def _rows(
    record: SpanRecord, draft: SpanDraft, fields: dict[str, Any], problems: list[str]
) -> MappedSpan:
    # ``record`` comes from :func:`_safe_record`: its attributes and resource are new dicts that
    # belong to this span's row, so they are stored as they are, without another copy.
    attributes = cast("dict[str, Any]", record.attributes)
    full_name = record.name
    span = {
        "span_id": record.span_id,
        "trace_id": record.trace_id,
        "parent_span_id": record.parent_span_id,
        "kind": draft.kind,
        "name": _fit(record.name, _LIMITS["name"], problems, "span name"),
        "start_ns": int(record.start_ns),
        "end_ns": int(record.end_ns),
        "status": record.status_code,
        "status_message": record.status_message,
        "input": draft.input,
        "output": draft.output,
        "model": _fit(draft.model, _LIMITS["model"], problems, "model"),
        "provider": _fit(draft.provider, _LIMITS["provider"], problems, "provider"),
        "input_tokens": _bigint(draft.input_tokens, problems, "input tokens"),
        "output_tokens": _bigint(draft.output_tokens, problems, "output tokens"),
        "reasoning_tokens": _bigint(draft.reasoning_tokens, problems, "reasoning tokens"),
        "attributes": attributes,
        "events": [
            {"name": e.name, "ts_ns": e.ts_ns, "attributes": e.attributes} for e in record.events
        ],
        "resource": record.resource,
        "scope": _fit(record.scope, _LIMITS["scope"], problems, "scope"),
    }
    if span["name"] != full_name:
        attributes["lucidtrace.ingest.span_name"] = full_name
    ordered = sorted(draft.steps, key=lambda s: s.ts_ns)  # stable: a span's own order kept
    steps = tuple(
        {
            "span_id": record.span_id,
            "seq": seq,
            "trace_id": record.trace_id,
            "ts_ns": int(step.ts_ns),
            "type": step.type,
            "text": step.text,
            "tool_name": _fit(step.tool_name, _STEP_LIMITS["tool_name"], problems, "tool name"),
            "tool_args": step.tool_args,
            "tool_call_id": _fit(
                step.tool_call_id, _STEP_LIMITS["tool_call_id"], problems, "tool call id"
            ),
            "is_error": step.is_error,
            "citations": step.citations,
        }
        for seq, step in enumerate(ordered)
    )
    documents = tuple(
        {
            "span_id": record.span_id,
            "rank": rank,
            "trace_id": record.trace_id,
            "doc_id": _fit(doc.doc_id, _DOC_ID_LIMIT, problems, "document id"),
            "score": doc.score,
            "content": doc.content,
            "source": doc.source,
            "metadata": doc.metadata,
        }
        for rank, doc in enumerate(draft.documents, start=1)
    )
    # What the readers decoded from JSON text can hold NUL or lone surrogates again: the one
    # cleaning rule runs over every value stored (attributes were cleaned on the way in).
    if may_decode_unsafe(attributes.values()) or any(
        may_decode_unsafe(e.attributes.values()) for e in record.events
    ):
        clean_row(span, problems, where="span", skip=_CLEAN_COLUMNS)
        for step in steps:
            clean_row(step, problems, where=str(step["type"]))
        for document in documents:
            clean_row(document, problems, where="document")
    if problems:
        attributes[PROBLEMS_KEY] = list(problems)
    return MappedSpan(span, steps, documents, fields, tuple(problems))


@dataclass(frozen=True)
class StepFact:
    """What :func:`superseded_steps` needs to know about one stored step."""

    span_id: str
    seq: int
    type: str
    ts_ns: int
    tool_call_id: str | None
    tool_name: str | None
    tool_args: str | None
    span_kind: str
    span_start_ns: int
    span_end_ns: int


def _args_key(args: str | None) -> str:
    if args is None:
        return ""
    try:
        return json.dumps(json.loads(args), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        return args.strip()


def superseded_steps(facts: Iterable[StepFact]) -> set[tuple[str, int]]:
    """The ``(span_id, seq)`` of steps that another step of the same trace supersedes.

    ``facts`` are the ACTION and ANSWER steps of one trace; see the module docstring for the rule.
    """
    facts = list(facts)
    executed = [f for f in facts if f.type == "ACTION" and f.span_kind == "TOOL"]
    by_id = {f.tool_call_id for f in executed if f.tool_call_id}
    # Tool and arguments are compared only for a proposal its call id does not link (parsing
    # the arguments costs more than the rest of the rule): those sets are built on first use.
    by_call: set[tuple[str | None, str]] | None = None
    by_call_no_id: set[tuple[str | None, str]] | None = None
    explicit = [f for f in facts if f.type == "ANSWER" and not _is_implicit_answer(f)]
    dropped: set[tuple[str, int]] = set()
    for fact in facts:
        if fact.type == "ACTION" and fact.span_kind != "TOOL":
            if fact.tool_call_id and fact.tool_call_id in by_id:
                linked = True
            else:
                call = (fact.tool_name, _args_key(fact.tool_args))
                if fact.tool_call_id:
                    if by_call_no_id is None:
                        by_call_no_id = {
                            (f.tool_name, _args_key(f.tool_args))
                            for f in executed
                            if not f.tool_call_id
                        }
                    linked = call in by_call_no_id
                else:
                    if by_call is None:
                        by_call = {(f.tool_name, _args_key(f.tool_args)) for f in executed}
                    linked = call in by_call
            if linked:
                dropped.add((fact.span_id, fact.seq))
        elif (
            fact.type == "ANSWER"
            and _is_implicit_answer(fact)
            and any(fact.span_start_ns <= e.ts_ns <= fact.span_end_ns for e in explicit)
        ):
            dropped.add((fact.span_id, fact.seq))
    return dropped


def _is_implicit_answer(fact: StepFact) -> bool:
    return fact.span_kind == "AGENT" and fact.ts_ns == fact.span_end_ns


def derive_trace(records: Iterable[SpanRecord]) -> list[MappedSpan]:
    """Map span records to rows (pure); duplicate steps among them are removed as in the store."""
    mapped = [derive_span(record) for record in records]
    by_trace: dict[str, list[StepFact]] = {}
    for item in mapped:
        span = item.span
        for step in item.steps:
            if step["type"] in ("ACTION", "ANSWER"):
                by_trace.setdefault(span["trace_id"], []).append(step_fact(step, span))
    dropped: set[tuple[str, int]] = set()
    for facts in by_trace.values():
        dropped |= superseded_steps(facts)
    if not dropped:
        return mapped
    return [
        dataclasses.replace(
            item, steps=tuple(s for s in item.steps if (s["span_id"], s["seq"]) not in dropped)
        )
        for item in mapped
    ]


def step_fact(step: dict[str, Any], span: dict[str, Any]) -> StepFact:
    """The :class:`StepFact` of a step row of a span row."""
    return StepFact(
        span_id=step["span_id"],
        seq=step["seq"],
        type=step["type"],
        ts_ns=step["ts_ns"],
        tool_call_id=step["tool_call_id"],
        tool_name=step["tool_name"],
        tool_args=step["tool_args"],
        span_kind=span["kind"],
        span_start_ns=span["start_ns"],
        span_end_ns=span["end_ns"],
    )
