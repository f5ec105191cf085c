"""``ChatOpenAI`` (langchain-openai) over HTTP to the scripted server, traced by the handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from lucidtrace.tracer._config import _reset_for_tests
from lucidtrace.tracer.integrations.langchain import CallbackHandler
from lucidtrace.tracer.testing import capture
from tests.integration.langchain_agents import attributes, calculator, docs_tool, search
from tests.integration.openai_server import OpenAIServer, Reply, ToolCall

pytestmark = pytest.mark.integration

QUESTION = "How many people live in Iceland, doubled?"


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    _reset_for_tests()
    yield
    _reset_for_tests()


def _model(server: OpenAIServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="scripted-model",
        base_url=server.base_url,
        api_key=SecretStr("sk-test"),
        max_retries=0,
        **kwargs,
    )


def _agent(model: ChatOpenAI) -> Any:
    from langchain.agents import create_agent

    return create_agent(model, [search, docs_tool(), calculator])


def _script(server: OpenAIServer, *, think: bool) -> None:
    first = "<think>I need the population first.</think>" if think else None
    server.script(
        [
            Reply(
                content=first,
                reasoning="I need the population first.",
                tool_calls=[ToolCall("search", {"query": "Iceland"}, id="call_1")],
                prompt_tokens=40,
                completion_tokens=9,
                reasoning_tokens=5,
            ),
            Reply(tool_calls=[ToolCall("calculator", {"expression": "387758 * 2"}, id="call_2")]),
            Reply(content="About 775,516."),
        ]
    )


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
def test_chat_completions_agent_with_think_blocks_and_tool_calls(
    openai_server: OpenAIServer, streaming: bool
) -> None:
    _script(openai_server, think=True)
    model = _model(openai_server, streaming=streaming, stream_usage=True)
    with capture() as trace:
        state = _agent(model).invoke(
            {"messages": [("user", QUESTION)]}, config={"callbacks": [CallbackHandler()]}
        )
    assert state["messages"][-1].content == "About 775,516."
    steps = trace.steps
    assert [(s["type"], s["tool_name"], s["tool_call_id"]) for s in steps] == [
        ("THOUGHT", None, None),
        ("ACTION", "search", "call_1"),
        ("OBSERVATION", None, "call_1"),
        ("ACTION", "calculator", "call_2"),
        ("OBSERVATION", None, "call_2"),
        ("ANSWER", None, None),
    ]
    assert steps[0]["text"] == "I need the population first."
    assert json.loads(steps[1]["tool_args"]) == {"query": "Iceland"}
    assert steps[4]["text"] == "775516"
    assert steps[5]["text"] == "About 775,516."
    llm = next(s for s in trace.spans if attributes(s)["lucidtrace.span.kind"] == "LLM")
    assert llm.name == "chat scripted-model"
    assert attributes(llm)["gen_ai.request.model"] == "scripted-model"
    assert attributes(llm)["gen_ai.response.model"] == "scripted-model"
    assert attributes(llm)["gen_ai.provider.name"] == "openai"
    assert attributes(llm)["gen_ai.usage.input_tokens"] == 40
    assert attributes(llm)["gen_ai.usage.output_tokens"] == 9
    assert attributes(llm)["gen_ai.usage.reasoning.output_tokens"] == 5
    assert len(openai_server.requests) == 3


def test_responses_api_reasoning_summary_becomes_a_thought(openai_server: OpenAIServer) -> None:
    _script(openai_server, think=False)
    model = _model(openai_server, use_responses_api=True)
    with capture() as trace:
        _agent(model).invoke(
            {"messages": [("user", QUESTION)]}, config={"callbacks": [CallbackHandler()]}
        )
    steps = trace.steps
    assert [(s["type"], s["tool_name"]) for s in steps] == [
        ("THOUGHT", None),
        ("ACTION", "search"),
        ("OBSERVATION", None),
        ("ACTION", "calculator"),
        ("OBSERVATION", None),
        ("ANSWER", None),
    ]
    assert steps[0]["text"] == "I need the population first."
    assert openai_server.requests[0].path.endswith("/responses")


def test_a_failed_model_call_ends_its_span_with_the_error(openai_server: OpenAIServer) -> None:
    openai_server.script([Reply(status=400, error_message="context too long")])
    model = _model(openai_server)
    with capture() as trace, pytest.raises(Exception, match="context too long"):
        model.invoke(QUESTION, config={"callbacks": [CallbackHandler()]})
    (span,) = trace.spans
    assert attributes(span)["lucidtrace.span.kind"] == "LLM"
    assert span.status.status_code.name == "ERROR"
    assert "context too long" in (span.status.description or "")
