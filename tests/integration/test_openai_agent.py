"""A tool-calling agent on the real OpenAI client: its audit trail in the store, and the same
trail from lucidtrace's integration, OpenInference's and OpenLLMetry's OpenAI instrumentors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace as trace_api
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.store import create_engine, get_trace, list_traces
from lucidtrace.tracer.testing import capture
from tests.integration.openai_server import OpenAIServer, Reply, ToolCall

pytestmark = [
    pytest.mark.usefixtures("clean_openai"),
    pytest.mark.integration,
    # opentelemetry-instrumentation-openai 0.62 declares a pydantic model with a class-based
    # `Config` (deprecated in pydantic 2); the warning fires once, when its module is imported.
    pytest.mark.filterwarnings(
        "ignore:Support for class-based `config` is deprecated"
        ":pydantic.warnings.PydanticDeprecatedSince20"
    ),
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the statistics office.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
FACTS = {"Iceland population": "Iceland has 387,758 inhabitants (2024)."}


def search(query: str) -> str:
    return FACTS.get(query, "no result")


@lt.traced(kind="agent")
def agent(client: openai.OpenAI, question: str) -> str:
    """LLM proposes tool calls, each runs under ``lt.tool_call``, the LLM answers."""
    messages: list[Any] = [{"role": "user", "content": question}]
    for _ in range(3):
        response = client.chat.completions.create(model="gpt-test", messages=messages, tools=TOOLS)
        message = response.choices[0].message
        if not message.tool_calls:
            return (message.content or "").split("</think>")[-1].strip()
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)
            with lt.tool_call(call.function.name, arguments, call_id=call.id) as tool:
                result = tool.set_result(search(**arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return "gave up"


def script(server: OpenAIServer) -> None:
    server.script(
        [
            Reply(
                content="<think>I need Iceland's population.</think>",
                tool_calls=[ToolCall("search", {"query": "Iceland population"}, id="call_1")],
            ),
            Reply(content="<think>The search answered it.</think>About 387,758 people."),
        ]
    )


EXPECTED = [
    ("THOUGHT", "I need Iceland's population.", None, None),
    ("ACTION", None, "search", {"query": "Iceland population"}),
    ("OBSERVATION", "Iceland has 387,758 inhabitants (2024).", None, None),
    ("THOUGHT", "The search answered it.", None, None),
    ("ANSWER", "About 387,758 people.", None, None),
]


def trail(steps: list[Any]) -> list[tuple[Any, ...]]:
    """Step type, text, tool name and arguments (parsed), in order."""
    return [
        (
            s["type"],
            s["text"],
            s["tool_name"],
            json.loads(s["tool_args"]) if s["tool_args"] else None,
        )
        for s in steps
    ]


@pytest.fixture
def client(openai_server: OpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0) as c:
        yield c


def test_the_audit_trail_lands_in_the_store(
    openai_server: OpenAIServer, client: openai.OpenAI, database_url: str
) -> None:
    lt.configure(database_url=database_url)
    lt.instrument("openai")
    script(openai_server)
    assert agent(client, "How many people live in Iceland?") == "About 387,758 people."
    assert lt.flush(timeout=30)
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            (summary,) = list_traces(session)
            detail = get_trace(session, trace_id=summary.trace_id)
            assert detail is not None
            steps = [
                {c: getattr(entry.step, c) for c in ("type", "text", "tool_name", "tool_args")}
                for entry in detail.steps
            ]
            llm = [s for s in detail.spans if s.kind == "LLM"]
    finally:
        engine.dispose()
    assert trail(steps) == EXPECTED
    assert [(s.model, s.provider, s.input_tokens, s.output_tokens) for s in llm] == [
        ("scripted-model", "openai", 11, 7)
    ] * 2


class _Lucidtrace:
    """lucidtrace's own integration, with the third-party instrumentors' call shape."""

    def instrument(self, **_: Any) -> None:
        lt.instrument("openai")

    def uninstrument(self) -> None:
        lt.uninstrument("openai")


def _lucidtrace() -> Any:
    return _Lucidtrace()


def _openinference() -> Any:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openllmetry() -> Any:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


@pytest.mark.parametrize(
    "make_instrumentor",
    [_lucidtrace, _openinference, _openllmetry],
    ids=["lucidtrace", "openinference", "openllmetry"],
)
def test_third_party_instrumentors_give_the_same_trail(
    openai_server: OpenAIServer,
    client: openai.OpenAI,
    make_instrumentor: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")  # OpenLLMetry's content capture
    instrumentor = make_instrumentor()
    with capture() as trace:
        # Third-party instrumentors emit through the provider lucidtrace configured.
        instrumentor.instrument(tracer_provider=trace_api.get_tracer_provider())
        try:
            script(openai_server)
            agent(client, "How many people live in Iceland?")
        finally:
            instrumentor.uninstrument()
    llm_spans = [s for s in trace.spans if s.name not in ("agent", "execute_tool search")]
    assert len(llm_spans) == 2
    assert trail(trace.steps) == EXPECTED
    observation = next(s for s in trace.steps if s["type"] == "OBSERVATION")
    assert observation["tool_call_id"] == "call_1"
