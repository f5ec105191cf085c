"""ingest_spans against real databases (SQLite and PostgreSQL, see ``--db``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from lucidtrace.store.ingest import PROBLEMS_KEY, SpanRecord, derive_trace, ingest_spans
from lucidtrace.store.models import Document, Span, Step, Trace
from lucidtrace.tracer import semconv as sc
from tests.unit.store.test_ingest_records import T0, agent_trace, new_trace_id, record

TABLES = (Trace, Span, Step, Document)
VOLATILE = {"updated_ns"}  # when the trace row was last recomputed


def dump(
    engine: sa.Engine, project_id: str | None = None, *, skip: frozenset[str] = frozenset()
) -> dict[str, list[dict[str, Any]]]:
    """Every row of the ingest tables, in key order, without the project and volatile columns."""
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for model in TABLES:
            table = model.__table__
            assert isinstance(table, sa.Table)
            query = sa.select(table).order_by(*table.primary_key.columns)
            if project_id is not None:
                query = query.where(table.c.project_id == project_id)
            out[table.name] = [
                {k: v for k, v in row._mapping.items() if k not in VOLATILE | skip | {"project_id"}}
                for row in conn.execute(query)
            ]
    return out


def trail(engine: sa.Engine, trace_id: str, project_id: str = "default") -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(Step.type, Step.text, Step.tool_name, Step.citations)
                .where(Step.trace_id == trace_id, Step.project_id == project_id)
                .order_by(Step.ts_ns, Step.span_id, Step.seq)
            )
        ]


def trace_row(engine: sa.Engine, trace_id: str, project_id: str = "default") -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(Trace.__table__).where(
                Trace.trace_id == trace_id, Trace.project_id == project_id
            )
        ).one()
    return {k: v for k, v in row._mapping.items() if k not in VOLATILE | {"project_id"}}


def test_quickstart_trace_is_stored_with_its_trail_documents_and_aggregates(
    engine: sa.Engine,
) -> None:
    records = agent_trace()
    trace_id = records[0].trace_id
    result = ingest_spans(engine, records)
    assert (result.spans, result.documents, result.trace_ids) == (3, 2, (trace_id,))
    assert trail(engine, trace_id) == [
        ("THOUGHT", "I need Iceland's population.", None, []),
        ("ACTION", None, "search", []),
        ("OBSERVATION", "387,758 (2024)", None, []),
        ("RETRIEVAL", "Iceland population", None, []),
        ("ANSWER", "About 387,758 people [doc-3].", None, ["doc-3"]),
    ]
    row = trace_row(engine, trace_id)
    assert row["name"] == "run"
    assert row["root_span_id"] == records[0].span_id
    assert (row["session_id"], row["user_id"]) == ("session-1", "user-1")
    assert row["tags"] == ["demo", "quickstart"]
    assert row["metadata"] == {"env": "test"}
    assert row["status"] == "ok"
    assert (row["start_ns"], row["end_ns"]) == (T0, T0 + 1000)
    assert json.loads(row["input"]) == {"question": "How many people live in Iceland?"}
    assert row["output"] == "About 387,758 people [doc-3]."
    assert (row["span_count"], row["step_count"]) == (3, 5)
    assert row["verdict"] == "unchecked"
    with engine.connect() as conn:
        docs = conn.execute(
            sa.select(Document.doc_id, Document.rank, Document.score).order_by(Document.rank)
        ).all()
    assert [tuple(d) for d in docs] == [("doc-3", 1, 0.91), ("doc-7", 2, 0.4)]


def test_storing_the_same_spans_twice_leaves_the_same_rows(engine: sa.Engine) -> None:
    records = agent_trace() + agent_trace()
    ingest_spans(engine, records)
    first = dump(engine)
    ingest_spans(engine, records)
    ingest_spans(engine, records[:2] + records[:2])  # duplicates inside one batch too
    assert dump(engine) == first
    assert len(first["spans"]) == 6
    assert len(first["steps"]) == 10


def llm_and_tools(trace_id: str) -> list[SpanRecord]:
    """A root agent, an LLM span proposing a tool call, and the tool span that ran it."""
    root = "00000000000001aa"
    return [
        record(
            trace_id=trace_id,
            span_id=root,
            name="agent",
            start=0,
            end=1000,
            attributes={sc.SPAN_KIND: "AGENT", sc.OUTPUT: json.dumps("done"), sc.TAGS: ("root",)},
        ),
        record(
            trace_id=trace_id,
            span_id="00000000000001bb",
            parent=root,
            name="chat",
            start=10,
            end=100,
            attributes={
                sc.OPERATION_NAME: "chat",
                sc.RESPONSE_MODEL: "m-1",
                sc.USAGE_INPUT_TOKENS: 10,
                sc.USAGE_OUTPUT_TOKENS: 4,
                sc.SESSION_ID: "child-session",
                sc.TAGS: ("child",),
                sc.OUTPUT_MESSAGES: json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [
                                {"type": "reasoning", "content": "Use the tool."},
                                {"type": "tool_call", "id": "c1", "name": "calc", "arguments": {}},
                            ],
                        }
                    ]
                ),
            },
        ),
        record(
            trace_id=trace_id,
            span_id="00000000000001cc",
            parent="00000000000001bb",
            name="execute_tool calc",
            start=200,
            end=300,
            attributes={sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "calc", sc.TOOL_CALL_ID: "c1"},
            status="error",
            message="ValueError: bad",
        ),
        record(
            trace_id=trace_id,
            span_id="00000000000001dd",
            parent=root,
            name="chat",
            start=400,
            end=500,
            attributes={
                sc.OPERATION_NAME: "chat",
                sc.REQUEST_MODEL: "m-2",
                sc.USAGE_INPUT_TOKENS: 1,
            },
        ),
    ]


@pytest.mark.parametrize("order", ["reversed", "one_by_one", "children_first"])
def test_batches_in_any_order_give_the_same_trace(engine: sa.Engine, order: str) -> None:
    trace_id = new_trace_id()
    records = llm_and_tools(trace_id)
    ingest_spans(engine, records, project_id="forward")
    batches = {
        "reversed": [[r] for r in reversed(records)],
        "one_by_one": [[r] for r in records],
        "children_first": [records[1:], records[:1]],
    }[order]
    for batch in batches:
        ingest_spans(engine, batch, project_id="shuffled")
    ingested = frozenset({"ingested_ns"})  # two separate ingests of the same spans
    assert dump(engine, "shuffled", skip=ingested) == dump(engine, "forward", skip=ingested)
    row = trace_row(engine, trace_id, "forward")
    assert row["root_span_id"] == "00000000000001aa"
    assert row["session_id"] == "child-session"  # from any span, when the root has none
    assert row["tags"] == ["root", "child"]  # the root's first
    assert row["models"] == ["m-1", "m-2"]
    assert (row["input_tokens"], row["output_tokens"]) == (11, 4)
    assert row["status"] == "ok"  # a failed tool does not fail the trace
    assert row["output"] == "done"
    # The proposed ACTION is dropped: the TOOL span's ACTION (linked by call id) stays.
    assert [(t, name) for t, _, name, _ in trail(engine, trace_id, "forward")] == [
        ("THOUGHT", None),
        ("ACTION", "calc"),
        ("OBSERVATION", None),
        ("ANSWER", None),
    ]
    assert row["step_count"] == 4


def test_orphan_span_is_the_root_until_its_parent_arrives(engine: sa.Engine) -> None:
    records = llm_and_tools(new_trace_id())
    trace_id = records[0].trace_id
    ingest_spans(engine, [records[2]])
    row = trace_row(engine, trace_id)
    assert (row["root_span_id"], row["name"], row["status"]) == (
        "00000000000001cc",
        "execute_tool calc",
        "error",
    )
    with engine.connect() as conn:
        parent = conn.execute(sa.select(Span.parent_span_id)).scalar_one()
    assert parent == "00000000000001bb"
    ingest_spans(engine, [records[0]])
    row = trace_row(engine, trace_id)
    assert (row["root_span_id"], row["name"], row["status"]) == (
        "00000000000001aa",
        "agent",
        "ok",  # the root span ended without error (OpenTelemetry leaves it UNSET)
    )


def test_trace_output_falls_back_to_the_last_answer_and_error_root_fails_the_trace(
    engine: sa.Engine,
) -> None:
    trace_id = new_trace_id()
    ingest_spans(
        engine,
        [
            record(
                trace_id=trace_id,
                name="job",
                status="error",
                message="crashed",
                attributes={sc.TRACE_NAME: "My job"},
                events=[
                    (sc.EVENT_ANSWER, 1, {sc.ANSWER_TEXT: "first"}),
                    (sc.EVENT_ANSWER, 5, {sc.ANSWER_TEXT: "second"}),
                ],
            )
        ],
    )
    row = trace_row(engine, trace_id)
    assert (row["output"], row["status"], row["name"]) == ("second", "error", "My job")


def test_hostile_attributes_are_stored_on_every_backend(engine: sa.Engine) -> None:
    deep: Any = "bottom"
    for _ in range(200):
        deep = {"k": deep}
    huge = "y" * 300_000
    trace_id = new_trace_id()
    result = ingest_spans(
        engine,
        [
            record(
                trace_id=trace_id,
                name="\x00evil\ud800",
                attributes={
                    **{f"a{i}": str(i) for i in range(10_000)},
                    "__class__": {"__init__": "x"},
                    "nul": "a\x00b",
                    "surrogate": "x\udc80y",
                    "bytes": b"\x00\xff",
                    "inf": float("inf"),
                    "deep": deep,
                    sc.SPAN_KIND: "TOOL",
                    sc.TOOL_NAME: "t" * 1000,
                    sc.TOOL_CALL_RESULT: huge,
                    sc.TOOL_CALL_ARGUMENTS: "{broken",
                    sc.SESSION_ID: "s" * 600,
                },
            )
        ],
    )
    assert result.problems == 1
    with engine.connect() as conn:
        attrs = conn.execute(sa.select(Span.attributes)).scalar_one()
        observation = conn.execute(
            sa.select(Step.text).where(Step.type == "OBSERVATION")
        ).scalar_one()
    assert attrs["a9999"] == "9999"
    assert attrs["__class__"] == {"__init__": "x"}
    assert attrs["nul"] == "a\ufffdb"
    assert attrs[sc.TOOL_CALL_ARGUMENTS] == "{broken"
    assert observation == huge
    assert attrs[PROBLEMS_KEY]
    assert trace_row(engine, trace_id)["session_id"] == "s" * 500


def test_invalid_ids_are_rejected_and_the_rest_stored(engine: sa.Engine) -> None:
    good = agent_trace()
    bad = record(trace_id="xyz", span_id="0000000000000000")
    result = ingest_spans(engine, [*good, bad])
    assert result.spans == 3
    assert len(result.rejected) == 1
    assert "trace id" in result.rejected[0]


def test_ingest_joins_the_callers_transaction(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.begin()
        ingest_spans(conn, agent_trace())
        conn.rollback()
    assert dump(engine)["spans"] == []


def test_stored_rows_are_the_mapped_rows(engine: sa.Engine) -> None:
    """Whichever insert path the backend takes, the rows read back are what the mapper made."""
    records = agent_trace() + llm_and_tools(new_trace_id())
    ingest_spans(engine, records)
    mapped = derive_trace(records)
    stored = dump(engine, skip=frozenset({"ingested_ns"}))
    by_key = {"spans": ("span_id",), "steps": ("span_id", "seq"), "documents": ("span_id", "rank")}
    for table, key in by_key.items():
        expected = sorted(
            (
                row
                for item in mapped
                for row in (
                    [item.span]
                    if table == "spans"
                    else item.steps
                    if table == "steps"
                    else item.documents
                )
            ),
            key=lambda row: tuple(row[k] for k in key),
        )
        assert stored[table] == [json.loads(json.dumps(row)) for row in expected], table
