"""Work done inside a LangChain run (``lt.thought``, ``@lt.traced``) nests under the run's span."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.tools import tool
from opentelemetry import trace as trace_api

import lucidtrace as lt
from lucidtrace.tracer._config import _reset_for_tests
from lucidtrace.tracer.integrations.langchain import CallbackHandler, LangChainInstrumentor
from lucidtrace.tracer.testing import TraceCapture, capture

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    _reset_for_tests()
    yield
    LangChainInstrumentor().uninstrument()
    _reset_for_tests()


@lt.traced(name="helper")
def helper(x: str) -> str:
    return "db:" + x


@tool
def lookup(x: str) -> str:
    """Look x up, thinking aloud."""
    lt.thought("thinking about " + x)
    return helper(x)


@tool
async def alookup(x: str) -> str:
    """Look x up, thinking aloud (async)."""
    await asyncio.sleep(0.001 * (len(x) % 5))
    lt.thought("thinking about " + x)
    return helper(x)


def _assert_nested(trace: TraceCapture, tool_name: str, count: int) -> None:
    tools = [s for s in trace.spans if s.name == f"execute_tool {tool_name}"]
    helpers = [s for s in trace.spans if s.name == "helper"]
    assert len(tools) == len(helpers) == count
    by_id = {s.context.span_id: s for s in tools}
    seen = set()
    for span in helpers:
        assert span.parent is not None
        parent = by_id[span.parent.span_id]
        assert parent.context.trace_id == span.context.trace_id
        seen.add(parent.context.span_id)
    assert len(seen) == count  # one helper under each tool run
    for span in tools:
        thoughts = [e for e in span.events if e.name == "lucidtrace.thought"]
        assert len(thoughts) == 1, [e.name for e in span.events]
    assert not [s for s in trace.spans if s.name == "thought"]  # no stray reasoning spans
    assert not trace_api.get_current_span().get_span_context().is_valid  # nothing left current


@pytest.mark.parametrize("instrumented", [False, True], ids=["handler", "instrument"])
def test_sync_tool_body_nests_under_the_tool_span(instrumented: bool) -> None:
    config: Any = {}
    if instrumented:
        lt.instrument("langchain")
    else:
        config = {"callbacks": [CallbackHandler()]}
    with capture() as trace:
        assert lookup.invoke("k1", config=config) == "db:k1"
    _assert_nested(trace, "lookup", 1)


@pytest.mark.parametrize("instrumented", [False, True], ids=["handler", "instrument"])
def test_concurrent_async_tool_bodies_nest_under_their_own_tool_span(instrumented: bool) -> None:
    config: Any = {}
    if instrumented:
        lt.instrument("langchain")
    else:
        config = {"callbacks": [CallbackHandler()]}

    async def main() -> list[Any]:
        calls = [lookup.ainvoke(f"s{i}", config=config) for i in range(10)]
        calls += [alookup.ainvoke(f"a{i}", config=config) for i in range(10)]
        return list(await asyncio.gather(*calls))

    with capture() as trace:
        results = asyncio.run(main())
    assert len(results) == 20
    tools = [s for s in trace.spans if s.name.startswith("execute_tool")]
    helpers = [s for s in trace.spans if s.name == "helper"]
    assert len(tools) == len(helpers) == 20
    by_id = {s.context.span_id: s for s in tools}
    parents = set()
    for span in helpers:
        assert span.parent is not None
        parent = by_id[span.parent.span_id]
        assert parent.context.trace_id == span.context.trace_id
        parents.add(parent.context.span_id)
    assert len(parents) == 20
    for span in tools:
        assert [e.name for e in span.events].count("lucidtrace.thought") == 1
    assert len({s.context.trace_id for s in tools}) == 20
