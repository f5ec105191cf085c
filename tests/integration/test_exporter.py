"""StoreSpanExporter with the real OpenTelemetry SDK, into SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer

from lucidtrace.store.engine import create_engine
from lucidtrace.store.models import Base, Document, Span, Step, Trace
from lucidtrace.tracer import semconv as sc
from lucidtrace.tracer.exporters import StoreSpanExporter

pytestmark = pytest.mark.integration


def run_agent(tracer: Tracer) -> str:
    """The quickstart agent, written against the plain OTel API with lucidtrace attributes."""
    with tracer.start_as_current_span(
        "run", attributes={sc.SPAN_KIND: "AGENT", sc.INPUT: json.dumps("Iceland?")}
    ) as root:
        root.add_event(sc.EVENT_THOUGHT, {sc.THOUGHT_TEXT: "I need Iceland's population."})
        with tracer.start_as_current_span(
            "execute_tool search",
            attributes={
                sc.SPAN_KIND: "TOOL",
                sc.TOOL_NAME: "search",
                sc.TOOL_CALL_ARGUMENTS: json.dumps({"query": "Iceland population"}),
            },
        ) as tool:
            tool.set_attribute(sc.TOOL_CALL_RESULT, json.dumps("387,758"))
        with tracer.start_as_current_span(
            "execute_tool calc", attributes={sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "calc"}
        ) as failing:
            failing.record_exception(ZeroDivisionError("division by zero"))
            failing.set_status(Status(StatusCode.ERROR, "ZeroDivisionError: division by zero"))
        with tracer.start_as_current_span(
            "retrieval",
            attributes={
                sc.SPAN_KIND: "RETRIEVER",
                sc.RETRIEVAL_QUERY: "Iceland population",
                sc.RETRIEVAL_DOCUMENTS: json.dumps(
                    [{"id": "doc-3", "content": "...", "score": 0.9}]
                ),
            },
        ):
            pass
        root.add_event(
            sc.EVENT_ANSWER,
            {sc.ANSWER_TEXT: "About 387,758 people [doc-3].", sc.ANSWER_CITATIONS: ("doc-3",)},
        )
        root.set_attribute(sc.OUTPUT, json.dumps("About 387,758 people [doc-3]."))
        return f"{root.get_span_context().trace_id:032x}"


def read_trail(engine: sa.Engine, trace_id: str) -> list[tuple[str, str | None, str | None, bool]]:
    with engine.connect() as conn:
        return [
            (row.type, row.text, row.tool_name, row.is_error)
            for row in conn.execute(
                sa.select(Step)
                .where(Step.trace_id == trace_id)
                .order_by(Step.ts_ns, Step.span_id, Step.seq)
            )
        ]


EXPECTED_TRAIL = [
    ("THOUGHT", "I need Iceland's population.", None, False),
    ("ACTION", None, "search", False),
    ("OBSERVATION", "387,758", None, False),
    ("ACTION", None, "calc", False),
    ("OBSERVATION", "ZeroDivisionError: division by zero", None, True),
    ("RETRIEVAL", "Iceland population", None, False),
    ("ANSWER", "About 387,758 people [doc-3].", None, False),
]


def test_sdk_spans_reach_the_store_through_the_exporter(database_url: str) -> None:
    exporter = StoreSpanExporter(database_url)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = run_agent(provider.get_tracer("tests"))
    provider.shutdown()
    engine = create_engine(database_url)
    try:
        assert read_trail(engine, trace_id) == EXPECTED_TRAIL
        with engine.connect() as conn:
            trace = conn.execute(sa.select(Trace).where(Trace.trace_id == trace_id)).one()
            docs = conn.execute(sa.select(Document.doc_id)).scalars().all()
        assert (trace.name, trace.span_count, trace.step_count) == ("run", 4, 7)
        assert trace.output == "About 387,758 people [doc-3]."
        assert docs == ["doc-3"]
    finally:
        engine.dispose()


def test_re_exporting_a_batch_changes_nothing(sqlite_url: str) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    run_agent(provider.get_tracer("tests"))
    spans = memory.get_finished_spans()
    exporter = StoreSpanExporter(sqlite_url)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        before = conn.execute(
            sa.select(Span.span_id, Span.ingested_ns).order_by(Span.span_id)
        ).all()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    with engine.connect() as conn:
        after = conn.execute(sa.select(Span.span_id, Span.ingested_ns).order_by(Span.span_id)).all()
        steps = conn.execute(sa.select(sa.func.count()).select_from(Step)).scalar_one()
    assert after == before
    assert steps == 7
    exporter.shutdown()
    engine.dispose()


@pytest.fixture
def unpatient_engine(tmp_path: Path) -> Iterator[tuple[sa.Engine, Path]]:
    """A SQLite store whose connections do not wait for locks (so the exporter must retry)."""
    path = tmp_path / "locked.db"
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    Base.metadata.create_all(engine)
    yield engine, path
    engine.dispose()


def spans_of_one_run() -> list[object]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    run_agent(provider.get_tracer("tests"))
    return list(memory.get_finished_spans())


def test_a_locked_sqlite_store_is_retried_until_the_lock_goes(
    unpatient_engine: tuple[sa.Engine, Path],
) -> None:
    engine, path = unpatient_engine
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    release = threading.Timer(0.12, blocker.rollback)
    release.start()
    exporter = StoreSpanExporter(engine=engine)
    assert exporter.export(spans_of_one_run()) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    release.join()
    blocker.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Span)).scalar_one() == 4


def test_a_lock_that_stays_gives_failure_logged_not_raised(
    unpatient_engine: tuple[sa.Engine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    engine, path = unpatient_engine
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    exporter = StoreSpanExporter(engine=engine)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        result = exporter.export(spans_of_one_run())  # type: ignore[arg-type]
    assert result is SpanExportResult.FAILURE
    assert time.monotonic() - started < 3
    assert "failed after 5 attempt(s)" in caplog.text
    blocker.rollback()
    blocker.close()


def test_construction_is_cheap_and_a_bad_store_fails_at_export(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_store = tmp_path / "notes.db"
    not_a_store.write_text("this is not a database")
    exporter = StoreSpanExporter(f"sqlite:///{not_a_store}")  # opens nothing yet
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        assert exporter.export(spans_of_one_run()) is SpanExportResult.FAILURE  # type: ignore[arg-type]
    assert "cannot export" in caplog.text
    assert not_a_store.read_text() == "this is not a database"


def test_shutdown_disposes_and_stops_exporting(sqlite_url: str) -> None:
    exporter = StoreSpanExporter(sqlite_url)
    spans = spans_of_one_run()
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE  # type: ignore[arg-type]


@pytest.mark.postgres
def test_a_dropped_postgres_connection_is_survived(postgres_url: str) -> None:
    exporter = StoreSpanExporter(postgres_url)
    assert exporter.export(spans_of_one_run()) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        database = conn.execute(sa.text("select current_database()")).scalar_one()
        conn.execute(
            sa.text(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = :db and pid <> pg_backend_pid()"
            ),
            {"db": database},
        )
        conn.commit()
    assert exporter.export(spans_of_one_run()) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Trace)).scalar_one() == 2
    exporter.shutdown()
    engine.dispose()


def test_importing_the_exporter_is_light() -> None:
    code = (
        "import sys, lucidtrace.tracer.exporters\n"
        "heavy = {'torch', 'transformers', 'fastapi', 'lucidtrace.store.ingest', 'alembic'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_quickstart_through_lt_configure_lands_in_the_store(database_url: str) -> None:
    import lucidtrace as lt

    lt.configure(database_url=database_url)
    try:

        @lt.traced(kind="agent")
        def run(question: str) -> str:
            lt.thought("I need Iceland's population, then its square.")
            with lt.tool_call("search", {"query": "Iceland population"}) as call:
                call.set_result("Iceland has 387,758 inhabitants (2024).")
            lt.retrieval(
                "Iceland population",
                documents=[{"id": "doc-3", "content": "...", "score": 0.91, "source": "wiki"}],
            )
            return lt.answer("About 387,758 people [doc-3].", cites=["doc-3"])

        run("How many people live in Iceland?")
        lt.flush()
    finally:
        lt.shutdown()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            trace = conn.execute(sa.select(Trace)).one()
            steps = conn.execute(
                sa.select(Step.type, Step.text, Step.tool_name, Step.tool_args, Step.citations)
                .where(Step.trace_id == trace.trace_id)
                .order_by(Step.ts_ns, Step.span_id, Step.seq)
            ).all()
            docs = conn.execute(sa.select(Document.doc_id)).scalars().all()
    finally:
        engine.dispose()
    assert [s.type for s in steps] == ["THOUGHT", "ACTION", "OBSERVATION", "RETRIEVAL", "ANSWER"]
    assert steps[0].text == "I need Iceland's population, then its square."
    assert (steps[1].tool_name, json.loads(steps[1].tool_args)) == (
        "search",
        {"query": "Iceland population"},
    )
    assert steps[2].text == "Iceland has 387,758 inhabitants (2024)."
    assert steps[4].citations == ["doc-3"]
    assert docs == ["doc-3"]
    assert trace.output == "About 387,758 people [doc-3]."
    assert trace.name == "run"
