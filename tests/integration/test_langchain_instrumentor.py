"""``lt.instrument("langchain")``: every LangChain run traced, once; undone by uninstrument."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import lucidtrace as lt
from lucidtrace.tracer._config import _reset_for_tests
from lucidtrace.tracer.integrations import get_instrumentor, list_instrumentors
from lucidtrace.tracer.integrations.langchain import CallbackHandler, LangChainInstrumentor
from lucidtrace.tracer.testing import TraceCapture, capture
from tests.integration.langchain_agents import react_agent, search

pytestmark = pytest.mark.integration

QUESTION = "How many people live in Iceland, doubled?"


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    _reset_for_tests()
    LangChainInstrumentor().uninstrument()
    yield
    LangChainInstrumentor().uninstrument()
    _reset_for_tests()


def _tool_spans(trace: TraceCapture) -> list[str]:
    return [s.name for s in trace.spans if s.name.startswith("execute_tool")]


def test_instrument_traces_runs_that_pass_no_callbacks() -> None:
    lt.instrument("langchain")
    assert LangChainInstrumentor().is_instrumented
    assert "langchain" in list_instrumentors()
    assert get_instrumentor("langchain") is LangChainInstrumentor()
    with capture() as trace:
        result = react_agent().invoke({"input": QUESTION})
    assert result["output"].startswith("Iceland has")
    assert [s["type"] for s in trace.steps][-1] == "ANSWER"
    assert _tool_spans(trace) == [
        "execute_tool search",
        "execute_tool docs",
        "execute_tool calculator",
    ]


def test_instrument_twice_and_an_explicit_handler_still_record_each_run_once() -> None:
    lt.instrument("langchain")
    lt.instrument("langchain")
    LangChainInstrumentor().instrument()
    with capture() as trace:
        search.invoke({"query": "Iceland"})
        search.invoke({"query": "Iceland"}, config={"callbacks": [CallbackHandler()]})
    assert _tool_spans(trace) == ["execute_tool search", "execute_tool search"]
    assert [s["type"] for s in trace.steps] == ["ACTION", "OBSERVATION"] * 2


def test_instrumentation_reaches_runs_started_in_other_threads() -> None:
    lt.instrument("langchain")
    with capture() as trace:
        thread = threading.Thread(target=lambda: search.invoke({"query": "Malta"}))
        thread.start()
        thread.join()
    assert _tool_spans(trace) == ["execute_tool search"]


def test_uninstrument_stops_tracing_and_is_idempotent() -> None:
    lt.instrument("langchain")
    lt.uninstrument("langchain")
    lt.uninstrument("langchain")
    assert not LangChainInstrumentor().is_instrumented
    assert LangChainInstrumentor().handler is None
    with capture() as trace:
        search.invoke({"query": "Iceland"})
    assert trace.spans == []
    lt.instrument("langchain")  # and on again
    with capture() as trace:
        search.invoke({"query": "Iceland"})
    assert _tool_spans(trace) == ["execute_tool search"]


def test_uninstrument_closes_runs_left_open() -> None:
    import uuid

    lt.instrument("langchain")
    handler = LangChainInstrumentor().handler
    assert handler is not None
    with capture() as trace:
        handler.on_chain_start({"name": "interrupted"}, {}, run_id=uuid.uuid4())
        lt.uninstrument("langchain")
    assert trace.span_named("interrupted").status.status_code.name == "ERROR"
