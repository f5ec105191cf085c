"""Real traced agent runs written to a store, for the page tests (TestClient and browser).

The runs go through the public tracer (``lt.configure(database_url=...)``, ``lt.span``,
``lt.thought``, ``lt.tool_call``, ``lt.retrieval``, ``lt.answer``) into the store the server
reads; findings are added with the store's ``add_finding``, as a check would.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.store import add_finding, create_engine, list_traces
from lucidtrace.tracer._config import _reset_for_tests

__all__ = ["SeededTraces", "hostile_run", "seed_demo", "seed_hostile", "traced_runs"]

DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class SeededTraces:
    """Trace ids of the demo runs, by trace name."""

    ids: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.ids[name]


class traced_runs:  # noqa: N801 - used as a context manager, reads like a function
    """Configure the tracer on ``database_url`` for a block; flush and reset after it."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def __enter__(self) -> None:
        _reset_for_tests()
        lt.configure(database_url=self.database_url)

    def __exit__(self, *exc: object) -> None:
        try:
            assert lt.flush(timeout=30.0), "the tracer did not store every span"
        finally:
            _reset_for_tests()


def _agent(
    name: str,
    question: str,
    *,
    thought: str,
    tool: str,
    args: dict[str, Any],
    result: str,
    documents: list[dict[str, Any]],
    answer: str,
    cites: list[str],
    model: str = "gpt-4o-mini",
    fail: bool = False,
) -> None:
    try:
        with lt.span(name, kind="agent", input=question) as run:
            with lt.span("plan", kind="llm", attributes={"gen_ai.request.model": model}) as llm:
                llm.set_output(thought)
                lt.thought(thought)
            with lt.tool_call(tool, args) as call:
                if fail:
                    raise TimeoutError(result)
                call.set_result(result)
            if documents:
                lt.retrieval(question, documents, data_source="kb")
            run.set_output(lt.answer(answer, cites=cites))
    except TimeoutError:
        if not fail:
            raise


def seed_demo(database_url: str) -> SeededTraces:
    """Four agent runs in two sessions plus one without a session, and their findings.

    * ``weather-agent`` (session ``sess-alpha``, user ``alice``, tags ``prod``, ``weather``):
      clear (one passed finding).
    * ``math-agent`` (``sess-alpha``, ``alice``, ``prod``, model ``llama-3-8b``): flagged by
      ``plan-action``.
    * ``search-agent`` (``sess-beta``, ``bob``, ``staging``): the tool timed out (status error).
    * ``poem-agent`` (no session): unchecked.
    """
    with traced_runs(database_url):
        with lt.trace_attributes(
            session_id="sess-alpha", user_id="alice", tags=["prod", "weather"], metadata={"v": 1}
        ):
            _agent(
                "weather-agent",
                "Will it rain in Oslo tomorrow?",
                thought="I should check the forecast for Oslo.",
                tool="get_weather",
                args={"city": "Oslo"},
                result="rain, 7 C",
                documents=[
                    {
                        "id": "doc-oslo",
                        "content": "Oslo has rainy autumns with frequent drizzle.",
                        "source": "https://example.org/oslo-climate",
                        "score": 0.91,
                    }
                ],
                answer="Yes, rain is expected in Oslo tomorrow.",
                cites=["doc-oslo"],
            )
        time.sleep(0.002)
        with lt.trace_attributes(session_id="sess-alpha", user_id="alice", tags=["prod"]):
            _agent(
                "math-agent",
                "What is six times seven?",
                thought="I will search the web for the product.",
                tool="calculator",
                args={"expression": "6*7"},
                result="42",
                documents=[],
                answer="The product is 42.",
                cites=[],
                model="llama-3-8b",
            )
        time.sleep(0.002)
        with lt.trace_attributes(session_id="sess-beta", user_id="bob", tags=["staging"]):
            _agent(
                "search-agent",
                "Who won the 1998 World Cup?",
                thought="A web search will tell me.",
                tool="web_search",
                args={"q": "1998 World Cup winner"},
                result="search backend timed out",
                documents=[],
                answer="",
                cites=[],
                fail=True,
            )
        time.sleep(0.002)
        _agent(
            "poem-agent",
            "Write a haiku about lighthouses.",
            thought="A short poem needs no tools.",
            tool="thesaurus",
            args={"word": "light"},
            result="beam, glow, lamp",
            documents=[],
            answer="Beam across dark waves",
            cites=[],
        )
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            ids = {row.name or "": row.trace_id for row in list_traces(session, limit=100)}
            now = time.time_ns()
            add_finding(
                session,
                trace_id=ids["weather-agent"],
                check_name="observation-grounding",
                check_version="1",
                status="passed",
                score=0.05,
                threshold=0.5,
                message="every claim is backed by a tool result",
                created_ns=now - DAY_NS,
            )
            add_finding(
                session,
                trace_id=ids["math-agent"],
                check_name="plan-action",
                check_version="1",
                status="flagged",
                score=0.92,
                threshold=0.5,
                message="the thought says it will search the web, the next action calls calculator",
                evidence={"thought": "I will search the web", "action": "calculator"},
                model_id="llama-3-8b",
                created_ns=now,
            )
            add_finding(
                session,
                trace_id=ids["math-agent"],
                check_name="observation-grounding",
                check_version="1",
                status="passed",
                score=0.1,
                threshold=0.5,
                created_ns=now,
            )
            session.commit()
    finally:
        engine.dispose()
    return SeededTraces(ids=ids)


def hostile_run(payload: str, index: int) -> None:
    """One agent run carrying ``payload`` in every field the tracer lets a caller set."""
    tag = f"t{index}"
    with (
        lt.trace_attributes(
            session_id=payload,
            user_id=payload,
            tags=[payload, tag],
            metadata={payload: payload, "note": payload},
        ),
        lt.span(payload, kind="agent", input=payload, attributes={payload: payload}) as run,
    ):
        with lt.span(
            payload,
            kind="llm",
            attributes={"gen_ai.request.model": payload[:200], "x-" + payload: payload},
        ) as llm:
            llm.set_output(payload)
            lt.thought(payload)
        with lt.tool_call(payload[:200], {payload: payload, "q": payload}) as call:
            call.set_result(payload)
        lt.retrieval(
            payload,
            [
                {
                    "id": payload[:200],
                    "content": payload,
                    "source": payload,
                    "score": 0.5,
                    "metadata": {payload: payload},
                }
            ],
            data_source=payload,
        )
        run.set_output(lt.answer(payload, cites=[payload[:200]]))


def seed_hostile(database_url: str, payloads: Iterable[str]) -> list[str]:
    """One traced run per payload, each flagged with the payload as message and evidence.

    Returns:
        The trace ids, in payload order.
    """
    items = list(payloads)
    with traced_runs(database_url):
        for index, payload in enumerate(items):
            hostile_run(payload, index)
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            ids = [
                list_traces(session, tag=f"t{index}", limit=1)[0].trace_id
                for index in range(len(items))
            ]
            for trace_id, payload in zip(ids, items, strict=True):
                add_finding(
                    session,
                    trace_id=trace_id,
                    check_name=payload[:100],
                    check_version=payload[:32],
                    status="flagged",
                    score=0.9,
                    threshold=0.5,
                    message=payload,
                    evidence={payload: payload, "quote": payload},
                    model_id=payload[:200],
                )
            session.commit()
    finally:
        engine.dispose()
    return ids
