"""SpanRecord from real SDK spans, plus the span builders the other ingest tests share."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from lucidtrace.store.ingest import SpanEvent, SpanRecord, record_from_readable_span
from lucidtrace.tracer import semconv as sc

_counter = itertools.count(1)
T0 = 1_700_000_000_000_000_000


def new_trace_id() -> str:
    return f"{next(_counter):032x}"


def new_span_id() -> str:
    return f"{next(_counter) + 0xA000000000000000:016x}"


def record(
    *,
    trace_id: str,
    span_id: str | None = None,
    parent: str | None = None,
    name: str = "span",
    start: int = 0,
    end: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[tuple[str, int, Mapping[str, Any]]] = (),
    status: str = "unset",
    message: str | None = None,
) -> SpanRecord:
    """A span record; times are offsets in ns from T0."""
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id or new_span_id(),
        parent_span_id=parent,
        name=name,
        kind="INTERNAL",
        start_ns=T0 + start,
        end_ns=T0 + (end if end is not None else start + 10),
        status_code=status,
        status_message=message,
        attributes=dict(attributes or {}),
        events=tuple(SpanEvent(n, T0 + ts, dict(a)) for n, ts, a in events),
        resource={"service.name": "test"},
        scope="tests",
    )


def agent_trace(trace_id: str | None = None) -> list[SpanRecord]:
    """The quickstart's trace: thought, tool call, retrieval, answer citing doc-3."""
    trace_id = trace_id or new_trace_id()
    root = new_span_id()
    return [
        record(
            trace_id=trace_id,
            span_id=root,
            name="run",
            start=0,
            end=1000,
            attributes={
                sc.SPAN_KIND: "AGENT",
                sc.INPUT: json.dumps({"question": "How many people live in Iceland?"}),
                sc.OUTPUT: json.dumps("About 387,758 people [doc-3]."),
                sc.SESSION_ID: "session-1",
                sc.USER_ID: "user-1",
                sc.TAGS: ("demo", "quickstart"),
                sc.METADATA: json.dumps({"env": "test"}),
            },
            events=[
                (sc.EVENT_THOUGHT, 10, {sc.THOUGHT_TEXT: "I need Iceland's population."}),
                (
                    sc.EVENT_ANSWER,
                    900,
                    {
                        sc.ANSWER_TEXT: "About 387,758 people [doc-3].",
                        sc.ANSWER_CITATIONS: ("doc-3",),
                    },
                ),
            ],
            status="ok",
        ),
        record(
            trace_id=trace_id,
            parent=root,
            name="execute_tool search",
            start=100,
            end=200,
            attributes={
                sc.SPAN_KIND: "TOOL",
                sc.TOOL_NAME: "search",
                sc.TOOL_CALL_ID: "call-1",
                sc.TOOL_CALL_ARGUMENTS: json.dumps({"query": "Iceland population"}),
                sc.TOOL_CALL_RESULT: json.dumps("387,758 (2024)"),
            },
        ),
        record(
            trace_id=trace_id,
            parent=root,
            name="retrieval",
            start=300,
            end=400,
            attributes={
                sc.SPAN_KIND: "RETRIEVER",
                sc.RETRIEVAL_QUERY: "Iceland population",
                sc.RETRIEVAL_DOCUMENTS: json.dumps(
                    [
                        {
                            "id": "doc-3",
                            "content": "Iceland has 387,758 inhabitants.",
                            "score": 0.91,
                            "source": "wiki",
                            "metadata": {"lang": "en"},
                        },
                        {"id": "doc-7", "content": "Reykjavik is the capital.", "score": 0.4},
                    ]
                ),
            },
        ),
    ]


@contextmanager
def sdk_tracer() -> Iterator[tuple[Any, InMemorySpanExporter]]:
    """A real SDK tracer whose finished spans land in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider.get_tracer("tests"), exporter
    finally:
        provider.shutdown()


def test_record_from_readable_span_keeps_ids_times_status_events_and_attributes() -> None:
    with sdk_tracer() as (tracer, exporter):
        with (
            tracer.start_as_current_span("outer") as outer,
            tracer.start_as_current_span("inner", attributes={"a": 1, "tags": ("x", "y")}) as inner,
        ):
            inner.add_event("note", {"k": "v"})
            inner.set_status(Status(StatusCode.ERROR, "boom"))
        spans = {s.name: record_from_readable_span(s) for s in exporter.get_finished_spans()}
    outer_ctx = outer.get_span_context()
    inner_rec = spans["inner"]
    assert inner_rec.trace_id == f"{outer_ctx.trace_id:032x}"
    assert len(inner_rec.trace_id) == 32
    assert len(inner_rec.span_id) == 16
    assert inner_rec.parent_span_id == f"{outer_ctx.span_id:016x}"
    assert spans["outer"].parent_span_id is None
    assert inner_rec.status_code == "error"
    assert inner_rec.status_message == "boom"
    assert inner_rec.kind == "INTERNAL"
    assert inner_rec.attributes == {"a": 1, "tags": ("x", "y")}
    assert [(e.name, dict(e.attributes)) for e in inner_rec.events] == [("note", {"k": "v"})]
    assert inner_rec.start_ns <= inner_rec.events[0].ts_ns <= inner_rec.end_ns
    assert inner_rec.scope == "tests"
    assert "service.name" in inner_rec.resource
