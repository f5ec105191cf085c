"""Fixtures of the trace page tests: traces recorded by the real tracer, an app, a browser.

Traces are written through ``lt.configure(database_url=...)`` and the tracer API, then findings
(and an attribution map) are added with :func:`lucidtrace.store.add_finding`, as a check would.
Browser tests reuse the shared fixtures: ``browser`` (Debian's chromium through Playwright) and
the guarded page of ``tests/e2e``, and ``running_server`` of ``tests/server``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.store import add_finding, create_engine
from lucidtrace.store.models import Attribution, Step, Trace
from lucidtrace.ui import ServerSettings
from tests.server.conftest import LiveServer, running_server

LONG_THOUGHT = "I should check the population first. " + "filler " * 1200 + "END-OF-THOUGHT"
LONG_OUTPUT = "row " * 2000 + "END-OF-OUTPUT"
LONG_ATTRIBUTE = "prompt " * 1000 + "END-OF-ATTRIBUTE"


@dataclass(frozen=True)
class Recorded:
    """A stored agent trace and the ids the tests look for."""

    url: str
    trace_id: str
    thought: tuple[str, int]
    answer: tuple[str, int]
    step_finding_id: int
    trace_finding_id: int


def record_agent(url: str) -> str:
    """Run a small agent under the real tracer into ``url``; return its trace id."""
    lt.configure(database_url=url)
    try:

        @lt.traced(kind="agent", name="iceland-agent")
        def run(question: str) -> str:
            lt.thought(LONG_THOUGHT)
            with lt.tool_call("search", {"query": "Iceland population", "top_k": 3}) as call:
                call.set_result("Iceland has 387,758 inhabitants (2024).")
            try:
                with lt.tool_call("calculator", {"expression": "387758 **"}):
                    raise ValueError("calculator: syntax error at end of input")
            except ValueError:
                pass
            lt.retrieval(
                "Iceland population",
                documents=[
                    {
                        "id": "doc-3",
                        "content": "Statistics Iceland: 387,758 inhabitants on 1 January 2024.",
                        "score": 0.91,
                        "source": "https://example.org/iceland",
                    },
                    {
                        "id": "doc-7",
                        "content": "Reykjavik is the capital.",
                        "score": 0.42,
                        "source": "javascript:alert(1)",
                    },
                ],
            )
            with lt.span(
                "format", kind="llm", attributes={"app.prompt": LONG_ATTRIBUTE}
            ) as formatting:
                formatting.set_output(LONG_OUTPUT)
            return lt.answer(
                "About 400,000 people live there [doc-3] [doc-99].", cites=["doc-3", "doc-99"]
            )

        with lt.trace_attributes(
            session_id="sess/42", user_id="ada", tags=["demo", "geo"], metadata={"team": "x"}
        ):
            run("How many people live in Iceland?")
        assert lt.flush(timeout=30)
    finally:
        lt.shutdown()
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return str(session.scalars(sa.select(Trace.trace_id)).one())
    finally:
        engine.dispose()


def add_findings(url: str, trace_id: str) -> tuple[int, int, tuple[str, int], tuple[str, int]]:
    """A step-level flagged finding on the thought and a trace-level one with an attribution."""
    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            steps = {
                step.type: (step.span_id, step.seq)
                for step in session.scalars(sa.select(Step).where(Step.trace_id == trace_id))
            }
            observation = session.scalars(
                sa.select(Step).where(Step.type == "OBSERVATION", Step.is_error.is_(False))
            ).one()
            on_step = add_finding(
                session,
                trace_id=trace_id,
                check_name="observation_grounding",
                check_version="1.0",
                status="flagged",
                score=0.93,
                threshold=0.5,
                message="The answer states a number no tool produced.",
                evidence={
                    "claim": "About 400,000 people live there",
                    "observation": "Iceland has 387,758 inhabitants (2024).",
                    "observation_step": {"span_id": observation.span_id, "seq": observation.seq},
                    "expected": 387758,
                    "found": 400000,
                    "matcher": {"kind": "number", "tolerance": 0.01},
                },
                step_span_id=steps["ANSWER"][0],
                step_seq=steps["ANSWER"][1],
            )
            on_trace = add_finding(
                session,
                trace_id=trace_id,
                check_name="early_answering",
                check_version="2.1",
                status="flagged",
                score=0.12,
                threshold=0.3,
                message="The answer barely depends on the stated reasoning.",
                evidence={
                    "curve": {
                        "x": [0.0, 0.25, 0.5, 0.75, 1.0],
                        "y": [0.81, 0.83, 0.84, 0.86, 0.9],
                        "x_label": "fraction of reasoning kept",
                        "y_label": "p(final answer)",
                    },
                    "segments": {"question": 0.61, "thought 1": -0.08, "doc-3": 0.22},
                    "paper": "Lanham et al. 2023",
                },
                model_id="SmolLM2-135M-Instruct",
                weights_hash="ab" * 32,
                proxy=True,
            )
            session.add(
                Attribution(
                    project_id=on_trace.project_id,
                    trace_id=trace_id,
                    finding_id=on_trace.id,
                    method="gradient_x_input",
                    model_id="SmolLM2-135M-Instruct",
                    target="About 400,000",
                    tokens=["How", " many", " people", " live", " in", " Iceland", "?"],
                    scores=[0.01, 0.02, 0.3, -0.4, 0.0, 1.0, None],
                    segments={"question": 0.93},
                    created_ns=time.time_ns(),
                )
            )
            return on_step.id, on_trace.id, steps["THOUGHT"], steps["ANSWER"]
    finally:
        engine.dispose()


def make_recorded(url: str) -> Recorded:
    """Record the agent trace into ``url`` and add its findings."""
    trace_id = record_agent(url)
    step_finding, trace_finding, thought, answer = add_findings(url, trace_id)
    return Recorded(url, trace_id, thought, answer, step_finding, trace_finding)


@pytest.fixture
def recorded(database_url: str) -> Recorded:
    """The agent trace with two findings, on SQLite and on PostgreSQL."""
    return make_recorded(database_url)


@pytest.fixture
def engine_for() -> Iterator[Any]:
    """Open store engines, disposed after the test."""
    engines: list[sa.Engine] = []

    def open_engine(url: str) -> sa.Engine:
        engine = create_engine(url)
        engines.append(engine)
        return engine

    yield open_engine
    for engine in engines:
        engine.dispose()


# ----------------------------------------------------------------------------- browser


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start the server on a store URL (uvicorn on a loopback port); stopped after the test."""
    with ExitStack() as stack:

        def start(url: str) -> LiveServer:
            return stack.enter_context(running_server(ServerSettings(database_url=url)))

        yield start


def record_big_trace(url: str, *, chains: int = 100, tools: int = 94) -> str:
    """An agent span, ``chains`` chain spans, each with 5 tool calls and ``tools`` tool spans."""
    lt.configure(database_url=url)
    try:
        with lt.span("big-agent", kind="agent"):
            for i in range(chains):
                with lt.span(f"chain {i}", kind="chain"):
                    for j in range(5):
                        with lt.tool_call("lookup", {"chain": i, "call": j}) as call:
                            call.set_result(f"result {i}.{j}")
                    for j in range(tools):
                        with lt.span(f"tool {i}.{j}", kind="tool"):
                            pass
        assert lt.flush(timeout=120)
    finally:
        lt.shutdown()
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return str(session.scalars(sa.select(Trace.trace_id)).one())
    finally:
        engine.dispose()
