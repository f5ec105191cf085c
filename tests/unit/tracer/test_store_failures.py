"""lt.configure() with a real store: unusable destinations, refused spans, honest flush()."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import lucidtrace as lt
from lucidtrace.store import ingest as ingest_module
from lucidtrace.store.engine import create_engine
from lucidtrace.store.models import Document, Span, Step


def rows(url: str, *columns: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.select(*columns))]
    finally:
        engine.dispose()


def test_nul_in_tool_results_and_documents_is_stored_consistently(database_url: str) -> None:
    lt.configure(database_url)

    @lt.traced(kind="agent")
    def innocent() -> None:
        lt.thought("innocent span of the same batch")

    @lt.traced(kind="agent")
    def run() -> None:
        with lt.tool_call("t", {"a": "x\x00"}) as call:
            call.set_result("before\x00after")
        lt.retrieval("q", documents=[{"id": "d\x00", "content": "x\x00y"}])
        lt.answer("see [d]", cites=["d\x00"])

    innocent()
    run()
    assert lt.flush(10)
    assert lt.get_stats().failed == 0
    steps = dict(rows(database_url, Step.type, Step.text))
    assert steps["OBSERVATION"] == "before\ufffdafter"
    [(doc_id, content)] = rows(database_url, Document.doc_id, Document.content)
    assert (doc_id, content) == ("d\ufffd", "x\ufffdy")
    [(citations,)] = [
        r[1:] for r in rows(database_url, Step.text, Step.citations) if r[0] == "see [d]"
    ]
    assert citations == [doc_id]  # the cited id is the retrieved one, on every backend


@pytest.fixture
def refusing_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest fails, as a database refusing a value would, for any batch holding ``poison``."""
    real = ingest_module.ingest_spans

    def ingest(engine: Any, records: Any, **kwargs: Any) -> Any:
        records = list(records)
        if any(r.name == "poison" for r in records):
            orig = sqlite3.DataError("value refused")
            raise sa.exc.DataError("INSERT INTO spans ...", {"output": "p" * 100_000}, orig)
        return real(engine, records, **kwargs)

    monkeypatch.setattr(ingest_module, "ingest_spans", ingest)


@pytest.mark.usefixtures("refusing_database")
def test_a_span_the_database_refuses_costs_only_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    lt.configure(url, flush_interval=60)
    with lt.span("first", kind="agent"):
        lt.thought("kept")
    with lt.span("same trace", kind="agent"):
        with lt.span("poison"):
            pass
        with lt.span("sibling"):
            pass
    with lt.span("last", kind="agent"):
        pass
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        assert lt.flush(10) is False  # one span that ended before the call was not stored
    stats = lt.get_stats()
    assert (stats.exported, stats.failed) == (4, 1)
    assert sorted(name for (name,) in rows(url, Span.name)) == [
        "first",
        "last",
        "same trace",
        "sibling",
    ]
    [message] = [r.getMessage() for r in caplog.records]
    assert "storing 1 span(s) failed" in message
    assert "value refused" in message
    assert "\n" not in message
    assert len(message) < 500  # no SQL parameters
    assert lt.flush(10) is True  # nothing lost since


def test_flush_is_false_when_the_store_goes_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lt.configure(f"sqlite:///{tmp_path / 'store.db'}")

    def gone(*args: Any, **kwargs: Any) -> Any:
        orig = sqlite3.OperationalError("disk I/O error")
        raise sa.exc.OperationalError("SELECT ...", {"x": "y" * 50_000}, orig)

    monkeypatch.setattr(ingest_module, "ingest_spans", gone)
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        for _ in range(3):
            with lt.span("a", kind="agent"), lt.span("b"):
                pass
            assert lt.flush(10) is False
    assert lt.get_stats().failed == 6
    [message] = [r.getMessage() for r in caplog.records]  # once per kind of failure
    assert "disk I/O error" in message
    assert len(message) < 500


@pytest.mark.parametrize(
    "url",
    [
        "foo://bar",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "not a url",
        "postgresql://postgres@127.0.0.1:1/x",
        "FILE/x.db",
    ],
)
def test_a_store_that_cannot_be_opened_leaves_tracing_off_with_one_line(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "FILE"
    blocker.write_text("a file where a directory should be")
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        lt.configure(url.replace("FILE", f"sqlite:///{blocker}"))
    assert lt.get_stats().enabled is False
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is None
    assert "tracing stays off" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert not (tmp_path / "not a url").exists()
    assert lt.flush(1) is True  # nothing configured


def test_zero_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        lt.configure(f"sqlite:///{tmp_path / 'x.db'}", max_queue_size=0)
    with pytest.raises(ValueError, match=">= 1"):
        lt.configure(f"sqlite:///{tmp_path / 'x.db'}", export_batch_size=0)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_values_whose_str_raises_do_not_cost_the_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    lt.configure(url)
    with lt.span("run", kind="agent"):
        lt.thought(Unprintable())  # type: ignore[arg-type]
        lt.retrieval(Unprintable(), documents=[{"id": Unprintable(), "content": "kept"}])  # type: ignore[arg-type]
        lt.answer(Unprintable(), cites=[Unprintable()])  # type: ignore[arg-type]
    assert lt.flush(10)
    types = sorted(t for (t,) in rows(url, Step.type))
    assert types == ["ANSWER", "RETRIEVAL", "THOUGHT"]
    [(content,)] = rows(url, Document.content)
    assert content == "kept"
