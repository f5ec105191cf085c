"""openinference-instrumentation-langchain as a client: its spans give the same audit trail.

The same scripted agent runs twice into one store: once traced by lucidtrace's own
``CallbackHandler``, once by OpenInference's ``LangChainInstrumentor`` through the OpenTelemetry
SDK provider that ``lt.configure()`` set up. The two stored trails must agree on what a reader
of the trail sees: step types and order, tool names, arguments, observations, documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openinference.instrumentation.langchain import LangChainInstrumentor as OpenInference
from opentelemetry import trace as trace_api
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.store import get_trace, list_traces
from lucidtrace.store.engine import create_engine
from lucidtrace.tracer._config import _reset_for_tests
from lucidtrace.tracer.integrations.langchain import CallbackHandler
from tests.integration.langchain_agents import graph_agent, react_agent

pytestmark = pytest.mark.integration

QUESTION = "How many people live in Iceland, doubled?"

Trail = list[tuple[Any, ...]]


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    _reset_for_tests()
    yield
    _reset_for_tests()


def _run_react(callbacks: list[Any]) -> None:
    react_agent().invoke({"input": QUESTION}, config={"callbacks": callbacks})


def _run_graph(callbacks: list[Any]) -> None:
    graph_agent().invoke({"messages": [("user", QUESTION)]}, config={"callbacks": callbacks})


def _stored(url: str, run: Callable[[list[Any]], None]) -> tuple[Trail, Trail, set[str]]:
    """Run the agent with each instrumentation; the two trails (ours, OpenInference's)."""
    lt.configure(database_url=url)
    run([CallbackHandler()])
    assert lt.flush(timeout=30)
    instrumentor = OpenInference()
    instrumentor.instrument(tracer_provider=trace_api.get_tracer_provider())
    try:
        run([])
    finally:
        instrumentor.uninstrument()
    assert lt.flush(timeout=30)
    lt.shutdown()
    engine = create_engine(url)
    trails: dict[str, Trail] = {}
    scopes: dict[str, set[str]] = {}
    with Session(engine) as session:
        for listed in list_traces(session):
            detail = get_trace(session, trace_id=listed.trace_id)
            assert detail is not None
            scope = {span.scope or "" for span in detail.spans}
            key = "openinference" if any("openinference" in s for s in scope) else "lucidtrace"
            scopes[key] = scope
            docs = iter(detail.documents)
            trails[key] = [
                (
                    s.step.type,
                    s.step.tool_name,
                    s.step.tool_args,
                    s.step.text,
                    s.step.is_error,
                    [(d.doc_id, d.content, d.source, d.score) for d in _take(docs, s.step.type)],
                )
                for s in detail.steps
            ]
    engine.dispose()
    assert set(trails) == {"lucidtrace", "openinference"}, scopes
    return trails["lucidtrace"], trails["openinference"], scopes["openinference"]


def _take(docs: Iterator[Any], step_type: str) -> list[Any]:
    # Documents are stored in span order; each RETRIEVAL step owns the next retriever's documents.
    return list(docs) if step_type == "RETRIEVAL" else []


def test_react_agent_gives_the_same_trail_with_openinference(database_url: str) -> None:
    ours, theirs, scope = _stored(database_url, _run_react)
    assert any("openinference" in s for s in scope)
    assert [step[0] for step in ours] == [
        "THOUGHT",
        "ACTION",
        "OBSERVATION",
        "THOUGHT",
        "ACTION",
        "RETRIEVAL",
        "OBSERVATION",
        "THOUGHT",
        "ACTION",
        "OBSERVATION",
        "THOUGHT",
        "ANSWER",
    ]
    assert theirs == ours
    retrieval = next(step for step in ours if step[0] == "RETRIEVAL")
    assert [doc[0] for doc in retrieval[5]] == ["doc-3", "doc-7"]


def _single_argument(args: str | None) -> str | None:
    """A one-argument call's value: OpenInference records ``{"query": "x"}`` as ``x``."""
    try:
        parsed = json.loads(args or "")
    except ValueError:
        return args
    if isinstance(parsed, dict) and len(parsed) == 1:
        return str(next(iter(parsed.values())))
    return args


def test_graph_agent_gives_the_same_trail_with_openinference(database_url: str) -> None:
    ours, theirs, _ = _stored(database_url, _run_graph)
    assert [step[0] for step in ours] == [
        "THOUGHT",
        "ACTION",
        "OBSERVATION",
        "ACTION",
        "RETRIEVAL",
        "OBSERVATION",
        "THOUGHT",
        "ACTION",
        "OBSERVATION",
        "ANSWER",
    ]
    normalized = [(s[0], s[1], _single_argument(s[2]), *s[3:]) for s in ours]
    assert theirs == normalized
