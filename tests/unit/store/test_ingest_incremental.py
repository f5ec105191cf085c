"""Ingest cost per batch, and incremental trace rows equal to a full recompute."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lucidtrace.store.engine import create_engine, ensure_schema
from lucidtrace.store.ingest import SpanRecord, ingest_spans
from lucidtrace.tracer import semconv as sc
from tests.unit.store.test_ingest import dump
from tests.unit.store.test_ingest_records import new_span_id, new_trace_id, record


class _CountingCursor(sqlite3.Cursor):
    fetched = 0

    def fetchone(self) -> Any:
        row = super().fetchone()
        _CountingCursor.fetched += row is not None
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = super().fetchmany(size) if size is not None else super().fetchmany()
        _CountingCursor.fetched += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = super().fetchall()
        _CountingCursor.fetched += len(rows)
        return rows


class _CountingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _CountingCursor)


@pytest.fixture
def counting_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'count.db'}", connect_args={"factory": _CountingConnection}
    )
    ensure_schema(engine, upgrade_existing=True)
    try:
        yield engine
    finally:
        engine.dispose()


def tool_span(trace_id: str, parent: str, i: int, call_id: str | None = None) -> SpanRecord:
    attributes: dict[str, Any] = {
        sc.SPAN_KIND: "TOOL",
        sc.TOOL_NAME: "search",
        sc.TOOL_CALL_ARGUMENTS: json.dumps({"i": i}),
        sc.TOOL_CALL_RESULT: json.dumps(f"result {i} " + "x" * 200),
    }
    if call_id is not None:
        attributes[sc.TOOL_CALL_ID] = call_id
    return record(
        trace_id=trace_id,
        parent=parent,
        name="execute_tool search",
        start=10 * i,
        end=10 * i + 5,
        attributes=attributes,
    )


def proposal_span(trace_id: str, parent: str, start: int, call_id: str, i: int) -> SpanRecord:
    part = {"type": "tool_call", "id": call_id, "name": "search", "arguments": {"i": i}}
    return record(
        trace_id=trace_id,
        parent=parent,
        name="chat",
        start=start,
        end=start + 3,
        attributes={
            sc.OPERATION_NAME: "chat",
            sc.OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [part]}]),
        },
    )


def test_a_batch_reads_rows_in_proportion_to_the_batch_not_the_trace(
    counting_engine: sa.Engine,
) -> None:
    trace_id = new_trace_id()
    root = new_span_id()  # the agent span ends last: its children arrive first, as orphans
    # Tools run on a model's request carry the model's call id.
    stored = [tool_span(trace_id, root, i, call_id=f"call-{i}") for i in range(1500)]
    for start in range(0, len(stored), 300):
        ingest_spans(counting_engine, stored[start : start + 300])
    batch = [tool_span(trace_id, root, 2000 + i, call_id=f"call-{2000 + i}") for i in range(20)]
    batch.append(proposal_span(trace_id, root, 19_990, "call-2000", 2000))
    _CountingCursor.fetched = 0
    ingest_spans(counting_engine, batch)
    assert _CountingCursor.fetched < 100  # was ~1,500: every stored ACTION with its text
    with counting_engine.connect() as conn:
        row = conn.execute(sa.text("select span_count, step_count from traces")).one()
    assert tuple(row) == (1521, 2 * 1520)  # the proposal was superseded by the executed call


def rich_trace(trace_id: str) -> list[SpanRecord]:
    """An agent with trace fields, proposals, executed calls, answers, and an orphan."""
    agent = new_span_id()
    spans = [
        record(
            trace_id=trace_id,
            span_id=agent,
            name="agent",
            start=0,
            end=10_000,
            attributes={
                sc.SPAN_KIND: "AGENT",
                sc.OUTPUT: json.dumps("implicit answer"),
                sc.SESSION_ID: "s-1",
                sc.TAGS: ("a", "b"),
                sc.METADATA: json.dumps({"k": 1}),
            },
        )
    ]
    for i in range(6):
        spans.append(proposal_span(trace_id, agent, 100 + 1000 * i, f"c{i}", i))
        if i % 2 == 0:
            spans.append(tool_span(trace_id, agent, 11 + 100 * i, call_id=f"c{i}"))
    spans.append(
        record(
            trace_id=trace_id,
            parent=agent,
            name="final",
            start=9000,
            end=9001,
            attributes={sc.SESSION_ID: "s-1", sc.TAGS: ("a",), sc.USER_ID: "u-2"},
            events=[(sc.EVENT_ANSWER, 9000, {sc.ANSWER_TEXT: "explicit", sc.ANSWER_CITATIONS: ()})],
        )
    )
    spans.append(
        record(
            trace_id=trace_id,
            parent=new_span_id(),  # its parent never arrives
            name="orphan",
            start=-5,
            end=20_000,
            attributes={sc.TAGS: ("z",), sc.METADATA: json.dumps({"k": 2, "j": 3})},
        )
    )
    return spans


@pytest.mark.parametrize("seed", range(6))
def test_batches_in_random_order_give_the_rows_of_one_batch(database_url: str, seed: int) -> None:
    engine = create_engine(database_url)
    try:
        trace_id = new_trace_id()
        spans = rich_trace(trace_id)
        ingest_spans(engine, spans, project_id="whole")
        rng = random.Random(seed)
        shuffled = spans[:]
        rng.shuffle(shuffled)
        cuts = sorted(rng.sample(range(1, len(shuffled)), 4))
        for lo, hi in zip([0, *cuts], [*cuts, len(shuffled)], strict=True):
            ingest_spans(engine, shuffled[lo:hi], project_id="batched")
        ingest_spans(engine, shuffled[:3], project_id="batched")  # a re-sent batch
        skip = frozenset({"ingested_ns"})
        assert dump(engine, "batched", skip=skip) == dump(engine, "whole", skip=skip)
    finally:
        engine.dispose()
