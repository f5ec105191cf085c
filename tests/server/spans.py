"""Spans made with the real OpenTelemetry SDK, and helpers to compare what the store holds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from lucidtrace.store.models import Base
from lucidtrace.tracer import semconv as sc

T0 = 1_700_000_000 * 1_000_000_000
MS = 1_000_000


def agent_spans(*, traces: int = 2, name: str = "run") -> Sequence[ReadableSpan]:
    """Agent runs using many attribute types, kinds, events, statuses and a resource."""
    exporter = InMemorySpanExporter()
    resource = Resource.create(
        {"service.name": "agent-svc", "deployment.environment": "test", "host.cores": 2}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.server", "1.0")
    for index in range(traces):
        start = T0 + index * 100 * MS
        root = tracer.start_span(
            f"{name} {index}",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={
                sc.SPAN_KIND: "AGENT",
                sc.SESSION_ID: "s-1",
                sc.USER_ID: "u-7",
                sc.TAGS: ["demo", "server"],
                "flag.ok": True,
                "score.float": 0.25,
                "count.int": 42,
                "ints": [1, 2, 3],
                "floats": [0.5, 1.5],
                "bools": [True, False],
                "text": "caf\u00e9 \U0001f600 <b>",
            },
        )
        root.add_event(sc.EVENT_THOUGHT, {sc.THOUGHT_TEXT: f"Think {index}"}, timestamp=start + MS)
        ctx = trace.set_span_in_context(root)
        tool = tracer.start_span(
            "execute_tool search",
            context=ctx,
            kind=SpanKind.CLIENT,
            start_time=start + 2 * MS,
            attributes={
                sc.SPAN_KIND: "TOOL",
                sc.TOOL_NAME: "search",
                sc.TOOL_CALL_ARGUMENTS: json.dumps({"query": f"q{index}"}),
            },
        )
        if index % 2:
            tool.record_exception(ValueError("backend down"), timestamp=start + 3 * MS)
            tool.set_status(Status(StatusCode.ERROR, "search backend down"))
        else:
            tool.set_attribute(sc.TOOL_CALL_RESULT, json.dumps("387,758 (2024)"))
            tool.set_status(Status(StatusCode.OK))
        tool.end(end_time=start + 4 * MS)
        documents = [{"id": "doc-3", "content": "Iceland has 387,758.", "score": 0.9}]
        retriever = tracer.start_span(
            "retrieval",
            context=ctx,
            kind=SpanKind.INTERNAL,
            start_time=start + 5 * MS,
            attributes={
                sc.SPAN_KIND: "RETRIEVER",
                sc.RETRIEVAL_QUERY: "Iceland population",
                sc.RETRIEVAL_DOCUMENTS: json.dumps(documents),
            },
        )
        retriever.end(end_time=start + 6 * MS)
        llm = tracer.start_span(
            "chat gpt-x",
            context=ctx,
            kind=SpanKind.PRODUCER,
            start_time=start + 7 * MS,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-x",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5,
            },
        )
        llm.end(end_time=start + 8 * MS)
        root.add_event(
            sc.EVENT_ANSWER,
            {sc.ANSWER_TEXT: f"About 387,758 [doc-3] ({index})", sc.ANSWER_CITATIONS: ["doc-3"]},
            timestamp=start + 9 * MS,
        )
        root.end(end_time=start + 10 * MS)
    provider.shutdown()
    return exporter.get_finished_spans()


_IGNORED = {"project_id", "ingested_ns", "updated_ns"}


def table_rows(engine: sa.Engine, table: str, project_id: str) -> list[dict[str, Any]]:
    """A project's rows of a table, without the project and ingest times, in a stable order."""
    model = Base.metadata.tables[table]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(model).where(model.c.project_id == project_id)).mappings()
        found = [{k: v for k, v in row.items() if k not in _IGNORED} for row in rows]
    return sorted(found, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def project_rows(engine: sa.Engine, project_id: str) -> dict[str, list[dict[str, Any]]]:
    """Spans, steps, documents and traces of a project, comparable across projects."""
    return {
        table: table_rows(engine, table, project_id)
        for table in ("traces", "spans", "steps", "documents")
    }


def count_spans(engine: sa.Engine, project_id: str | None = None) -> int:
    """Spans stored (in one project, or in all)."""
    spans = Base.metadata.tables["spans"]
    query = sa.select(sa.func.count()).select_from(spans)
    if project_id is not None:
        query = query.where(spans.c.project_id == project_id)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
