"""One handler, many runs at once: each trace holds only its own steps, with the right parents."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

import lucidtrace as lt
from lucidtrace.tracer._config import _reset_for_tests
from lucidtrace.tracer.integrations.langchain import CallbackHandler, LangChainInstrumentor
from lucidtrace.tracer.testing import TraceCapture, capture
from tests.integration.langchain_agents import POPULATION, react_agent, rule_agent

pytestmark = pytest.mark.integration

COUNTRIES = ("Iceland", "Malta", "Monaco")


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    _reset_for_tests()
    yield
    LangChainInstrumentor().uninstrument()
    _reset_for_tests()


def _by_trace(trace: TraceCapture) -> dict[int, list[dict[str, Any]]]:
    steps: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for step in trace.steps:
        steps[int(step["trace_id"], 16)].append(step)
    return steps


def _assert_one_tree_per_trace(spans: Sequence[ReadableSpan], root_name: str) -> None:
    """Each trace has one root called ``root_name``, and every span's parent is in its trace."""
    by_id = {span.context.span_id: span for span in spans}
    roots = [span for span in spans if span.parent is None]
    assert sorted(r.name for r in roots) == [root_name] * len(roots)
    for span in spans:
        if span.parent is not None:
            parent = by_id[span.parent.span_id]  # the parent was recorded...
            assert parent.context.trace_id == span.context.trace_id  # ...in the same trace
            assert (parent.start_time or 0) <= (span.start_time or 0)
            assert (span.end_time or 0) <= (parent.end_time or 0)


def _assert_own_steps(steps: list[dict[str, Any]]) -> str:
    """The steps of one rule-agent run: search(country), its result, the answer. Returns it."""
    assert [s["type"] for s in steps] == ["ACTION", "OBSERVATION", "ANSWER"]
    country = json.loads(steps[0]["tool_args"])["query"]
    fact = POPULATION[country.lower()]
    assert steps[0]["tool_call_id"] == steps[1]["tool_call_id"] == f"call_{country}"
    assert steps[1]["text"] == fact
    assert steps[2]["text"] == f"Answer: {fact}"
    return str(country)


def _questions() -> list[dict[str, Any]]:
    return [{"messages": [("user", f"How many people live in {c}?")]} for c in COUNTRIES]


def test_batch_with_one_handler_gives_one_clean_trace_per_input() -> None:
    handler = CallbackHandler()
    with capture() as trace:
        results = rule_agent().batch(
            _questions(), config={"callbacks": [handler], "max_concurrency": 3}
        )
    assert len(results) == 3
    traces = _by_trace(trace)
    assert sorted(_assert_own_steps(steps) for steps in traces.values()) == sorted(COUNTRIES)
    _assert_one_tree_per_trace(trace.spans, "LangGraph")
    assert handler.open_runs == 0


def test_abatch_with_one_handler_gives_one_clean_trace_per_input() -> None:
    handler = CallbackHandler()

    async def main() -> list[Any]:
        results: list[Any] = await rule_agent().abatch(
            _questions(), config={"callbacks": [handler]}
        )
        return results

    with capture() as trace:
        results = asyncio.run(main())
    assert len(results) == 3
    traces = _by_trace(trace)
    assert sorted(_assert_own_steps(steps) for steps in traces.values()) == sorted(COUNTRIES)
    _assert_one_tree_per_trace(trace.spans, "LangGraph")
    assert handler.open_runs == 0


def test_threads_sharing_one_handler_keep_their_react_steps_apart() -> None:
    handler = CallbackHandler()
    errors: list[BaseException] = []

    def run(country: str) -> None:
        script = [
            f" I look up {country}.\nAction: search\nAction Input: {country}",
            f" Done.\nFinal Answer: {POPULATION[country.lower()]}",
        ]
        try:
            for _ in range(3):
                react_agent(script).invoke(
                    {"input": f"Population of {country}?"}, config={"callbacks": [handler]}
                )
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    with capture() as trace:
        threads = [threading.Thread(target=run, args=(c,)) for c in COUNTRIES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    traces = _by_trace(trace)
    assert len(traces) == 9
    seen = []
    for steps in traces.values():
        assert [s["type"] for s in steps] == [
            "THOUGHT",
            "ACTION",
            "OBSERVATION",
            "THOUGHT",
            "ANSWER",
        ]
        country = steps[1]["tool_args"]
        assert steps[0]["text"] == f"I look up {country}."
        assert steps[2]["text"] == steps[4]["text"] == POPULATION[country.lower()]
        seen.append(country)
    assert sorted(seen) == sorted(COUNTRIES * 3)
    _assert_one_tree_per_trace(trace.spans, "AgentExecutor")
    assert handler.open_runs == 0


def test_instrumented_batch_in_threads_is_traced_without_passing_a_handler() -> None:
    with capture() as trace:
        lt.instrument("langchain")
        results = rule_agent().batch(_questions(), config={"max_concurrency": 3})
    assert len(results) == 3
    traces = _by_trace(trace)
    assert sorted(_assert_own_steps(steps) for steps in traces.values()) == sorted(COUNTRIES)
    _assert_one_tree_per_trace(trace.spans, "LangGraph")
