"""Realistic traces for the query tests, stored through the real ingest path."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from lucidtrace.store import SpanEvent, SpanRecord, ingest_spans

SECOND = 1_000_000_000
T0 = 1_790_000_000 * SECOND
_ids = itertools.count(1)


def new_trace_id() -> str:
    """A fresh trace id (32 hex digits)."""
    n = next(_ids)
    return f"{n:08x}00000000{n + 0xB0000000:016x}"


def agent_trace(
    *,
    trace_id: str | None = None,
    name: str = "agent",
    start_s: int = 0,
    duration_s: int = 2,
    question: str = "What is the capital of France?",
    thought: str = "I should look it up in the atlas.",
    tool_result: str = "Paris is the capital of France.",
    answer: str = "The capital is Paris.",
    session_id: str | None = None,
    user_id: str | None = None,
    tags: Sequence[str] = (),
    model: str = "gpt-test",
    status: str = "ok",
    extra_attributes: dict[str, Any] | None = None,
) -> list[SpanRecord]:
    """An agent run: a root span with a thought and an answer, an LLM call and a tool call."""
    trace_id = trace_id or new_trace_id()
    root = trace_id[:16]
    start = T0 + start_s * SECOND
    end = start + duration_s * SECOND
    attributes: dict[str, Any] = {
        "lucidtrace.span.kind": "AGENT",
        "lucidtrace.trace.name": name,
        "lucidtrace.input": question,
        "lucidtrace.output": answer,
        **(extra_attributes or {}),
    }
    if session_id is not None:
        attributes["gen_ai.conversation.id"] = session_id
    if user_id is not None:
        attributes["lucidtrace.user.id"] = user_id
    if tags:
        attributes["lucidtrace.tags"] = list(tags)
    return [
        SpanRecord(
            trace_id=trace_id,
            span_id=root,
            parent_span_id=None,
            name=name,
            kind="INTERNAL",
            start_ns=start,
            end_ns=end,
            status_code=status,
            status_message=None,
            attributes=attributes,
            events=(
                SpanEvent("lucidtrace.thought", start + 1, {"lucidtrace.thought.text": thought}),
                SpanEvent("lucidtrace.answer", end - 1, {"lucidtrace.answer.text": answer}),
            ),
            resource={"service.name": "query-tests", "deployment.environment": "test"},
            scope="lucidtrace",
        ),
        SpanRecord(
            trace_id=trace_id,
            span_id=f"{int(root, 16) + 1:016x}",
            parent_span_id=root,
            name=f"chat {model}",
            kind="CLIENT",
            start_ns=start + 10,
            end_ns=start + 20,
            status_code="ok",
            status_message=None,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 7,
                "temperature": 0.25,
                "stream": False,
                "stop": ["\n\n", "END"],
            },
            resource={"service.name": "query-tests", "deployment.environment": "test"},
            scope="lucidtrace",
        ),
        SpanRecord(
            trace_id=trace_id,
            span_id=f"{int(root, 16) + 2:016x}",
            parent_span_id=root,
            name="execute_tool atlas",
            kind="INTERNAL",
            start_ns=start + 30,
            end_ns=start + 40,
            status_code="ok",
            status_message=None,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "atlas",
                "gen_ai.tool.call.id": "call-1",
                "gen_ai.tool.call.arguments": '{"q": "capital of France"}',
                "gen_ai.tool.call.result": tool_result,
            },
            resource={"service.name": "query-tests", "deployment.environment": "test"},
            scope="lucidtrace.tools",
        ),
    ]


def store(engine: sa.Engine, records: list[SpanRecord], *, project_id: str = "default") -> str:
    """Ingest the records; return their trace id."""
    result = ingest_spans(engine, records, project_id=project_id)
    assert not result.rejected, result.rejected
    return records[0].trace_id
