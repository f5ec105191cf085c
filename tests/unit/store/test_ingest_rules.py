"""Ingest rules at the edges: default columns, re-sent spans, proposals linked by name."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import pytest
import sqlalchemy as sa

from lucidtrace.store.engine import create_engine
from lucidtrace.store.ingest import SpanRecord, ingest_spans
from lucidtrace.store.models import Span, Trace
from lucidtrace.tracer import semconv as sc
from tests.unit.store.test_ingest import dump, trace_row
from tests.unit.store.test_ingest_records import agent_trace, new_span_id, new_trace_id, record


def test_new_trace_rows_take_the_default_verdict(engine: sa.Engine) -> None:
    spans = agent_trace()
    ingest_spans(engine, spans)
    row = trace_row(engine, spans[0].trace_id)
    assert row["verdict"] == "unchecked"
    assert row["span_count"] == len(spans)


def test_a_span_stored_again_replaces_its_values_but_keeps_its_first_ingest(
    engine: sa.Engine,
) -> None:
    spans = agent_trace()
    ingest_spans(engine, spans)
    with engine.connect() as conn:
        first = dict(conn.execute(sa.select(Span.span_id, Span.ingested_ns)).all())
    again = [
        dataclasses.replace(
            span, name=span.name + " again", attributes={**span.attributes, "extra": [1, 2]}
        )
        if i == 0
        else span
        for i, span in enumerate(spans)
    ]
    ingest_spans(engine, again)
    rows = {row["span_id"]: row for row in dump(engine)["spans"]}
    changed = rows[spans[0].span_id]
    assert changed["name"] == spans[0].name + " again"
    assert changed["attributes"]["extra"] == [1, 2]
    assert {span_id: row["ingested_ns"] for span_id, row in rows.items()} == first
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Trace)).scalar() == 1


def _proposal(trace_id: str, parent: str, start: int, part: dict[str, Any]) -> SpanRecord:
    message = {"role": "assistant", "parts": [{"type": "tool_call", **part}]}
    return record(
        trace_id=trace_id,
        parent=parent,
        name="chat",
        start=start,
        attributes={sc.OPERATION_NAME: "chat", sc.OUTPUT_MESSAGES: json.dumps([message])},
    )


def _tool(trace_id: str, parent: str, start: int, name: str, args: str) -> SpanRecord:
    return record(
        trace_id=trace_id,
        parent=parent,
        name=f"execute_tool {name}",
        start=start,
        attributes={
            sc.SPAN_KIND: "TOOL",
            sc.TOOL_NAME: name,
            sc.TOOL_CALL_ARGUMENTS: args,
            sc.TOOL_CALL_RESULT: json.dumps("found"),
        },
    )


def linked_by_name_trace(trace_id: str) -> list[SpanRecord]:
    """Proposals linked to executed calls by tool and arguments (no call ids), or not at all."""
    agent = new_span_id()
    return [
        record(trace_id=trace_id, span_id=agent, name="agent", start=0, end=10_000),
        _proposal(trace_id, agent, 100, {"name": "search", "arguments": {"q": "x", "n": 1}}),
        _tool(trace_id, agent, 200, "search", '{"n": 1, "q": "x"}'),  # the same call
        _proposal(trace_id, agent, 300, {"name": "search", "arguments": {"q": "never run"}}),
        _proposal(trace_id, agent, 400, {"id": "c-9", "name": "lookup", "arguments": "{}"}),
        _tool(trace_id, agent, 500, "lookup", "{}"),  # no id: linked by tool and arguments
        _proposal(trace_id, agent, 600, {"arguments": {"q": "x"}}),  # no tool name
        _proposal(trace_id, agent, 700, {"id": "c-1", "name": "other", "arguments": "{}"}),
    ]


@pytest.mark.parametrize("seed", range(4))
def test_proposals_linked_by_name_settle_alike_in_any_batches(database_url: str, seed: int) -> None:
    engine = create_engine(database_url)
    try:
        spans = linked_by_name_trace(new_trace_id())
        ingest_spans(engine, spans, project_id="whole")
        shuffled = spans[:]
        random.Random(seed).shuffle(shuffled)
        for start in range(0, len(shuffled), 3):
            ingest_spans(engine, shuffled[start : start + 3], project_id="batched")
        skip = frozenset({"ingested_ns"})
        whole = dump(engine, "whole", skip=skip)
        assert dump(engine, "batched", skip=skip) == whole
        actions = [step for step in whole["steps"] if step["type"] == "ACTION"]
        assert len(actions) == 5  # two executed, three proposals that nothing ran
    finally:
        engine.dispose()
