"""The LangChain callback handler on real agents: a text ReAct agent and a LangGraph agent."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import ToolException, tool
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.store import get_trace, list_traces
from lucidtrace.store.engine import create_engine
from lucidtrace.tracer._config import _reset_for_tests
from lucidtrace.tracer.integrations.langchain import CallbackHandler
from lucidtrace.tracer.testing import capture
from tests.integration.langchain_agents import (
    PARALLEL_SCRIPT,
    REACT_SCRIPT,
    ScriptedChatModel,
    attributes,
    graph_agent,
    parent_id,
    react_agent,
    search,
    step_summary,
)

pytestmark = pytest.mark.integration

QUESTION = "How many people live in Iceland, doubled?"
ANSWER = "Iceland has 387,758 people [doc-3]; twice that is 775516."


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    _reset_for_tests()
    yield
    _reset_for_tests()


def test_react_agent_stored_trail_is_thought_action_observation_then_answer(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'lt.db'}"
    lt.configure(database_url=url)
    result = react_agent().invoke({"input": QUESTION}, config={"callbacks": [CallbackHandler()]})
    assert result["output"] == ANSWER
    assert lt.flush(timeout=30)

    engine = create_engine(url)
    with Session(engine) as session:
        (listed,) = list_traces(session)
        detail = get_trace(session, trace_id=listed.trace_id)
        assert detail is not None
        trail = [
            (s.step.type, s.step.tool_name, s.step.tool_args, s.step.text, s.step.is_error)
            for s in detail.steps
        ]
        docs = [(d.doc_id, d.score, d.source, d.content) for d in detail.documents]
        root = next(span for span in detail.spans if span.parent_span_id is None)
    engine.dispose()

    assert trail == [
        ("THOUGHT", None, None, "I need the population of Iceland.", False),
        ("ACTION", "search", "Iceland population", None, False),
        ("OBSERVATION", None, None, "Iceland has 387,758 inhabitants (2024).", False),
        ("THOUGHT", None, None, "Let me confirm it in the documents.", False),
        ("ACTION", "docs", "Iceland population", None, False),
        ("RETRIEVAL", None, None, "Iceland population", False),
        (
            "OBSERVATION",
            None,
            None,
            "Iceland's population passed 387,000 in 2024.\n\nReykjavik is the capital of Iceland.",
            False,
        ),
        ("THOUGHT", None, None, "Now I double it.", False),
        ("ACTION", "calculator", "387758 * 2", None, False),
        ("OBSERVATION", None, None, "775516", False),
        ("THOUGHT", None, None, "I now know the final answer.", False),
        ("ANSWER", None, None, ANSWER, False),
    ]
    assert docs == [
        ("doc-3", 0.91, "statice", "Iceland's population passed 387,000 in 2024."),
        ("doc-7", 0.42, "wiki", "Reykjavik is the capital of Iceland."),
    ]
    assert (root.name, root.kind) == ("AgentExecutor", "AGENT")


def test_react_agent_spans_nest_under_the_executor_and_record_the_llm_calls() -> None:
    with capture() as trace:
        react_agent().invoke({"input": QUESTION}, config={"callbacks": [CallbackHandler()]})
    spans = trace.spans
    root = trace.span_named("AgentExecutor")
    assert root.parent is None
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    by_id = {s.context.span_id: s for s in spans}
    for span in spans:
        if span is not root:  # every span reaches the executor through its parents
            parent = span
            while parent.parent is not None:
                parent = by_id[parent_id(parent)]
            assert parent is root
    llms = [s for s in spans if attributes(s)["lucidtrace.span.kind"] == "LLM"]
    assert len(llms) == len(REACT_SCRIPT)
    first = attributes(llms[0])
    assert first["gen_ai.operation.name"] == "text_completion"
    assert (
        "Question: " + QUESTION
        in json.loads(first["gen_ai.input.messages"])[0]["parts"][0]["content"]
    )
    output = json.loads(first["gen_ai.output.messages"])
    assert output == [
        {"role": "assistant", "parts": [{"type": "text", "content": REACT_SCRIPT[0]}]}
    ]
    retriever = trace.span_named("retrieval CorpusRetriever")
    tool_span = by_id[parent_id(retriever)]
    assert tool_span.name == "execute_tool docs"


def test_graph_agent_trail_links_tool_calls_by_id_and_answers_with_citations() -> None:
    with capture() as trace:
        state = graph_agent().invoke(
            {"messages": [("user", QUESTION)]}, config={"callbacks": [CallbackHandler()]}
        )
    assert state["messages"][-1].content == ANSWER
    steps = trace.steps
    assert [(s["type"], s["tool_name"], s["tool_call_id"]) for s in steps] == [
        ("THOUGHT", None, None),
        ("ACTION", "search", "call_search_1"),
        ("OBSERVATION", None, "call_search_1"),
        ("ACTION", "docs", "call_docs_1"),
        ("RETRIEVAL", None, None),
        ("OBSERVATION", None, "call_docs_1"),
        ("THOUGHT", None, None),
        ("ACTION", "calculator", "call_calc_1"),
        ("OBSERVATION", None, "call_calc_1"),
        ("ANSWER", None, None),
    ]
    assert steps[0]["text"] == "I should look the population up first."  # reasoning_content
    assert json.loads(steps[1]["tool_args"]) == {"query": "Iceland"}
    assert steps[2]["text"] == "Iceland has 387,758 inhabitants (2024)."
    assert steps[6]["text"] == "Double 387758."  # a <think> block
    assert json.loads(steps[7]["tool_args"]) == {"expression": "387758 * 2"}
    assert steps[8]["text"] == "775516"
    assert steps[-1]["text"] == ANSWER
    assert steps[-1]["citations"] == ["doc-3"]  # a retrieved id the answer cites

    root = trace.span_named("LangGraph")
    assert root.parent is None
    assert attributes(root)["lucidtrace.span.kind"] == "AGENT"
    first_llm = next(s for s in trace.spans if attributes(s)["lucidtrace.span.kind"] == "LLM")
    assert attributes(first_llm)["gen_ai.usage.input_tokens"] == 50
    assert attributes(first_llm)["gen_ai.usage.output_tokens"] == 12
    inputs = json.loads(attributes(first_llm)["gen_ai.input.messages"])
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    system = json.loads(attributes(first_llm)["gen_ai.system_instructions"])
    assert system == [{"type": "text", "content": "You answer population questions."}]


def test_graph_run_inside_a_traced_function_nests_under_it() -> None:
    @lt.traced(kind="agent")
    def run(question: str) -> str:
        state = graph_agent().invoke(
            {"messages": [("user", question)]}, config={"callbacks": [CallbackHandler()]}
        )
        return str(state["messages"][-1].content)

    with capture() as trace:
        run(QUESTION)
    outer = trace.span_named("run")
    graph = trace.span_named("LangGraph")
    assert graph.parent is not None
    assert parent_id(graph) == outer.context.span_id
    assert [s["type"] for s in trace.steps].count("ANSWER") == 1


def test_tool_error_is_an_error_observation_and_the_agent_goes_on() -> None:
    @tool
    def lookup(query: str) -> str:
        """Look something up."""
        raise ToolException("the index is offline")

    lookup.handle_tool_error = True
    script = [
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"query": "x"}, "id": "c1"}]),
        AIMessage(content="I could not look it up."),
    ]
    from langchain.agents import create_agent

    agent = create_agent(ScriptedChatModel(messages=iter(script)), [lookup])
    with capture() as trace:
        agent.invoke({"messages": [HumanMessage("x?")]}, config={"callbacks": [CallbackHandler()]})
    steps = trace.steps
    observation = next(s for s in steps if s["type"] == "OBSERVATION")
    assert observation["is_error"] is True
    assert "the index is offline" in observation["text"]
    assert steps[-1]["type"] == "ANSWER"
    assert steps[-1]["text"] == "I could not look it up."


def test_a_raising_tool_ends_its_span_with_the_error() -> None:
    @tool
    def broken(query: str) -> str:
        """Fail."""
        raise RuntimeError("boom")

    with capture() as trace, pytest.raises(RuntimeError, match="boom"):
        broken.invoke({"query": "x"}, config={"callbacks": [CallbackHandler()]})
    span = trace.span_named("execute_tool broken")
    assert span.status.status_code.name == "ERROR"
    assert [(s["type"], s["is_error"]) for s in trace.steps] == [
        ("ACTION", False),
        ("OBSERVATION", True),
    ]


class _Exploding(CallbackHandler):
    """A handler whose span plumbing fails on every start: the agent must not notice."""

    def _start(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracing is broken")


def test_handler_failures_never_reach_the_agent(caplog: pytest.LogCaptureFixture) -> None:
    with capture(), caplog.at_level(logging.WARNING, logger="lucidtrace"):
        result = react_agent().invoke({"input": QUESTION}, config={"callbacks": [_Exploding()]})
    assert result["output"] == ANSWER
    assert "LangChain handler failed" in caplog.text


def test_a_run_that_never_ends_is_closed_on_flush() -> None:
    handler = CallbackHandler()
    with capture() as trace:
        run_id = uuid.uuid4()
        handler.on_chain_start({"name": "stuck"}, {"x": 1}, run_id=run_id)
        assert handler.open_runs == 1
        assert handler.flush(timeout=10)
        assert handler.open_runs == 0
        stuck = trace.span_named("stuck")
        assert stuck.status.status_code.name == "ERROR"
        handler.on_chain_end({"x": 2}, run_id=run_id)  # a late end is ignored
    assert len(trace.spans) == 1


def test_unconfigured_handler_records_nothing_and_keeps_no_state() -> None:
    handler = CallbackHandler()
    result = react_agent().invoke({"input": QUESTION}, config={"callbacks": [handler]})
    assert result["output"] == ANSWER
    assert handler.open_runs == 0


def test_handler_is_a_langchain_callback_handler_that_never_raises() -> None:
    handler = CallbackHandler()
    assert isinstance(handler, BaseCallbackHandler)
    assert handler.raise_error is False
    with capture():
        # wrong types everywhere: logged, not raised
        handler.on_llm_end(None, run_id=None)  # type: ignore[arg-type]
        handler.on_tool_start(None, None, run_id=1)  # type: ignore[arg-type]
        handler.on_retriever_end(None, run_id=1)  # type: ignore[arg-type]


def test_plain_tool_call_outside_any_agent() -> None:
    with capture() as trace:
        assert search.invoke({"query": "Malta"}, config={"callbacks": [CallbackHandler()]}) == (
            "Malta has 563,443 inhabitants (2024)."
        )
    assert step_summary(trace.steps) == [
        ("ACTION", "search", '{"query": "Malta"}', None),
        ("OBSERVATION", None, None, "Malta has 563,443 inhabitants (2024)."),
    ]


def test_parallel_tool_calls_of_one_turn_each_get_their_action_and_observation() -> None:
    with capture() as trace:
        graph_agent(PARALLEL_SCRIPT).invoke(
            {"messages": [("user", "Iceland and Malta?")]},
            config={"callbacks": [CallbackHandler()]},
        )
    steps = trace.steps
    actions = {s["tool_call_id"]: s for s in steps if s["type"] == "ACTION"}
    observations = {s["tool_call_id"]: s for s in steps if s["type"] == "OBSERVATION"}
    assert {k: (a["tool_name"], json.loads(a["tool_args"])) for k, a in actions.items()} == {
        "call_a": ("search", {"query": "Iceland"}),
        "call_b": ("search", {"query": "Malta"}),
        "call_c": ("docs", {"query": "Malta"}),
    }
    assert observations["call_a"]["text"] == "Iceland has 387,758 inhabitants (2024)."
    assert observations["call_b"]["text"] == "Malta has 563,443 inhabitants (2024)."
    assert observations["call_c"]["text"] == "Malta is an island country in the Mediterranean."
    for call_id, action in actions.items():
        assert action["ts_ns"] <= observations[call_id]["ts_ns"]
    (retrieval,) = [s for s in steps if s["type"] == "RETRIEVAL"]
    assert actions["call_c"]["ts_ns"] <= retrieval["ts_ns"] <= observations["call_c"]["ts_ns"]
    retriever = trace.span_named("retrieval CorpusRetriever")
    assert trace.span_named("execute_tool docs").context.span_id == parent_id(retriever)
    assert steps[-1]["type"] == "ANSWER"
