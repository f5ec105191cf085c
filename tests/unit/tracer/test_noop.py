"""Nothing configured (or tracing off): every call is a no-op and user code runs normally."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lucidtrace as lt
from lucidtrace.tracer._config import STATE


def test_unconfigured_calls_do_nothing_and_return_what_they_should() -> None:
    @lt.traced(kind="agent")
    def run(q: str) -> str:
        lt.thought("t")
        with lt.tool_call("search", {"q": q}) as call:
            assert call.set_result("r") == "r"
            assert not call.is_recording
        lt.retrieval(q, documents=[{"id": "d"}])
        with lt.span("s") as s:
            s.set_input(object())
            s.set_output(1)
            s.set_attribute("k", "v")
            assert s.span is trace_api.INVALID_SPAN
        return lt.answer("a", cites=["d"])

    @lt.traced
    async def arun() -> int:
        return 3

    @lt.traced
    def gen() -> Iterator[int]:
        yield 1

    assert run("q") == "a"
    assert asyncio.run(arun()) == 3
    assert list(gen()) == [1]
    assert lt.flush() is True
    assert lt.shutdown() is True
    assert lt.get_stats().enabled is False


def test_exceptions_pass_through_unconfigured() -> None:
    @lt.traced
    def boom() -> None:
        raise LookupError("x")

    with pytest.raises(LookupError):
        boom()
    with pytest.raises(ZeroDivisionError), lt.tool_call("calc"):
        _ = 1 / 0


def test_enabled_false_and_the_environment_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    lt.configure(exporter=exporter, enabled=False)
    assert STATE.tracer is None
    monkeypatch.setenv("LUCIDTRACE_ENABLED", "false")
    lt.configure(exporter=exporter)
    assert STATE.tracer is None
    lt.configure(exporter=exporter, enabled=True)  # the argument wins over the environment
    with lt.span("on"):
        pass
    assert lt.flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["on"]


def test_a_store_that_cannot_be_opened_leaves_tracing_off_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker}/sub/lucidtrace.db"

    @lt.traced
    def work() -> int:
        return 1

    with caplog.at_level(logging.ERROR, logger="lucidtrace"):
        lt.configure(url)
    assert work() == 1
    if STATE.tracer is None:
        assert "could not open the store" in caplog.text
        assert "LUCIDTRACE_DATABASE_URL" in caplog.text
    else:  # the store opens lazily: the failure shows on export, never in user code
        assert lt.flush(timeout=10)
        assert lt.get_stats().failed == 1


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lucidtrace.tracer import resolve_database_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LUCIDTRACE_DATABASE_URL", raising=False)
    assert resolve_database_url() == f"sqlite:///{tmp_path.resolve() / 'lucidtrace.db'}"
    monkeypatch.setenv("LUCIDTRACE_DATABASE_URL", "sqlite:///from-env.db")
    assert resolve_database_url() == "sqlite:///from-env.db"
    assert resolve_database_url("sqlite:///arg.db") == "sqlite:///arg.db"


class _Sabotage(SpanProcessor):
    """A third-party processor that raises when ``armed`` (spans still end normally)."""

    armed = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.armed:
            raise RuntimeError("processor bug")


_SABOTAGE = _Sabotage()


def test_a_failure_inside_tracing_never_reaches_user_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = InMemorySpanExporter()
    lt.configure(exporter=exporter)
    provider = trace_api.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    if _SABOTAGE not in provider._active_span_processor._span_processors:
        provider.add_span_processor(_SABOTAGE)

    @lt.traced(kind="agent")
    def agent(x: int) -> int:
        lt.thought("thinking")
        with lt.span("inner") as s, lt.tool_call("t", {"x": x}) as call:
            s.set_output(x)
            call.set_result(x)
        lt.retrieval("q", documents=[{"id": "d"}])
        return lt.answer(str(x * 2), cites=["d"]) and x * 2

    @lt.traced
    def gen() -> Iterator[int]:
        yield from (1, 2)

    _SABOTAGE.armed = True
    try:
        with caplog.at_level(logging.WARNING, logger="lucidtrace"):
            assert agent(21) == 42
            assert agent(1) == 2
            assert list(gen()) == [1, 2]
    finally:
        _SABOTAGE.armed = False
    assert "processor bug" in caplog.text
    assert caplog.text.count("could not start a span") <= 2  # once per kind of failure


def test_bad_environment_values_warn_and_fall_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LUCIDTRACE_MAX_QUEUE_SIZE", "lots")
    monkeypatch.setenv("LUCIDTRACE_ENABLED", "maybe")
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        lt.configure(exporter=InMemorySpanExporter())
    assert STATE.processor is not None
    assert STATE.processor._max_queue_size == 100_000
    assert "LUCIDTRACE_MAX_QUEUE_SIZE='lots' is not an integer" in caplog.text
    assert "LUCIDTRACE_ENABLED='maybe' is not a boolean" in caplog.text


def test_queue_size_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUCIDTRACE_MAX_QUEUE_SIZE", "7")
    monkeypatch.setenv("LUCIDTRACE_EXPORT_BATCH_SIZE", "3")
    lt.configure(exporter=InMemorySpanExporter())
    assert STATE.processor is not None
    assert (STATE.processor._max_queue_size, STATE.processor._batch_size) == (7, 3)
