"""The OpenAI SDK integration with the real ``openai`` client over HTTP to the scripted server."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode

import lucidtrace as lt
from lucidtrace.tracer.integrations import get_instrumentor, list_instrumentors
from lucidtrace.tracer.integrations.openai import OpenAIInstrumentor, wrap_openai
from lucidtrace.tracer.testing import capture
from tests.integration.openai_server import (
    OpenAIServer,
    Raw,
    Reply,
    ToolCall,
    chat_chunks,
    chat_completion,
    response_events,
    response_object,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_openai")]

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "How many people live in Iceland?"},
]


@pytest.fixture(params=["wrap", "instrument"])
def how(request: pytest.FixtureRequest) -> Iterator[str]:
    """Trace clients with ``wrap_openai`` or with the instrumentor (restored afterwards)."""
    if request.param == "instrument":
        lt.instrument("openai")
    yield str(request.param)
    lt.uninstrument("openai")


_OPEN: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def make_client(server: OpenAIServer, how: str, *, is_async: bool = False) -> Any:
    """A client of the scripted server; an async one is closed by the call that uses it."""
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = cls(base_url=server.base_url, api_key="sk-test-key", max_retries=0)
    if not is_async:
        _OPEN.append(client)
    return wrap_openai(client) if how == "wrap" else client


def call(client: Any, api: str, *, stream: bool, is_async: bool, **extra: Any) -> Any:
    """One create call on either API, consuming a stream; returns the response or the chunks."""
    if api == "chat":
        create = client.chat.completions.create
        kwargs: dict[str, Any] = {"model": "gpt-test", "messages": MESSAGES, **extra}
        if stream:
            kwargs["stream_options"] = {"include_usage": True}
    else:
        create = client.responses.create
        kwargs = {"model": "gpt-test", "input": MESSAGES[1]["content"], **extra}
    if not is_async:
        result = create(stream=stream, **kwargs)
        return list(result) if stream else result

    async def run() -> Any:
        try:
            result = await create(stream=stream, **kwargs)
            return [item async for item in result] if stream else result
        finally:
            await client.close()

    return asyncio.run(run())


def llm_span(trace: Any) -> Any:
    spans = [s for s in trace.spans if s.attributes.get("lucidtrace.span.kind") == "LLM"]
    assert len(spans) == 1, [s.name for s in trace.spans]
    return spans[0]


def output_parts(span: Any) -> list[dict[str, Any]]:
    messages = json.loads(span.attributes["gen_ai.output.messages"])
    return [part for message in messages for part in message["parts"]]


# ---------------------------------------------------------------- every API and mode


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_tool_call_with_reasoning_becomes_thought_and_action(
    openai_server: OpenAIServer, how: str, api: str, stream: bool, is_async: bool
) -> None:
    call_ = ToolCall("search", {"query": "Iceland population"}, id="call_42")
    openai_server.script(
        [Reply(tool_calls=[call_], reasoning="I should look it up.", reasoning_tokens=5)]
    )
    client = make_client(openai_server, how, is_async=is_async)
    with capture() as trace:
        call(client, api, stream=stream, is_async=is_async, temperature=0.2)

    span = llm_span(trace)
    attrs = dict(span.attributes)
    assert span.name == "chat gpt-test"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.response.model"] == "scripted-model"
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 5
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    inputs = json.loads(attrs["gen_ai.input.messages"])
    assert inputs[-1] == {
        "role": "user",
        "parts": [{"type": "text", "content": "How many people live in Iceland?"}],
    }
    assert [
        (s["type"], s["text"], s["tool_name"], s["tool_args"], s["tool_call_id"])
        for s in trace.steps
    ] == [
        ("THOUGHT", "I should look it up.", None, None, None),
        ("ACTION", None, "search", '{"query": "Iceland population"}', "call_42"),
    ]


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_think_tags_in_content_become_a_thought(
    openai_server: OpenAIServer, api: str, stream: bool
) -> None:
    openai_server.script([Reply(content="<think>387,758 per Hagstofa.</think>About 387,758.")])
    client = make_client(openai_server, "wrap")
    with capture() as trace:
        call(client, api, stream=stream, is_async=False)
    assert output_parts(llm_span(trace)) == [
        {"type": "reasoning", "content": "387,758 per Hagstofa."},
        {"type": "text", "content": "About 387,758."},
    ]
    assert [(s["type"], s["text"]) for s in trace.steps] == [("THOUGHT", "387,758 per Hagstofa.")]


def test_tool_results_and_history_are_recorded_as_input_parts(openai_server: OpenAIServer) -> None:
    openai_server.script([Reply(content="About 387,758 people.", cached_tokens=4)])
    client = make_client(openai_server, "wrap")
    history = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"query": "Iceland"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "387,758 (2024)"},
    ]
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    with capture() as trace:
        client.chat.completions.create(
            model="gpt-test", messages=history, tools=tools, max_tokens=50, seed=7, stop=["\n\n"]
        )
    attrs = dict(llm_span(trace).attributes)
    inputs = json.loads(attrs["gen_ai.input.messages"])
    assert [m["role"] for m in inputs] == ["system", "user", "assistant", "tool"]
    assert inputs[2]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "search", "arguments": {"query": "Iceland"}}
    ]
    assert inputs[3]["parts"] == [
        {"type": "tool_call_response", "id": "call_1", "response": "387,758 (2024)"}
    ]
    assert json.loads(attrs["gen_ai.tool.definitions"]) == tools
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ("\n\n",)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 4
    assert trace.steps == []  # plain text from the model is not a step


def test_responses_instructions_and_tool_outputs(openai_server: OpenAIServer) -> None:
    openai_server.script([Reply(content="About 387,758.")])
    client = make_client(openai_server, "wrap")
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Iceland?"}]},
        {"type": "function_call", "call_id": "c1", "name": "search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "387,758"},
    ]
    with capture() as trace:
        client.responses.create(model="gpt-test", input=items, instructions="Be terse.")
    attrs = dict(llm_span(trace).attributes)
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be terse."}
    ]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Iceland?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "search", "arguments": {}}],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "c1", "response": "387,758"}],
        },
    ]


# ---------------------------------------------------------------- the caller sees no difference


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [(type(v), v.model_dump()) for v in value]
    return type(value), value.model_dump()


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_tracing_never_changes_what_the_caller_receives(
    openai_server: OpenAIServer, api: str, stream: bool, is_async: bool
) -> None:
    reply = Reply(
        content="<think>hm</think>Done.",
        reasoning="r",
        tool_calls=[ToolCall("search", {"q": "x"})],
        reasoning_tokens=2,
    )
    if api == "chat":
        fixed = Raw(events=chat_chunks(reply, include_usage=True)) if stream else None
        fixed = fixed or Raw(body=chat_completion(reply))
    else:
        fixed = Raw(events=response_events(reply)) if stream else Raw(body=response_object(reply))
    openai_server.script([fixed, fixed])
    plain_client = make_client(openai_server, "none", is_async=is_async)
    traced_client = make_client(openai_server, "wrap", is_async=is_async)
    without = call(plain_client, api, stream=stream, is_async=is_async)
    with capture() as trace:
        with_tracing = call(traced_client, api, stream=stream, is_async=is_async)
    assert _dump(with_tracing) == _dump(without)
    assert len(trace.spans) == 1


def test_a_stream_keeps_the_sdk_protocol(openai_server: OpenAIServer) -> None:
    openai_server.script([Reply(content="Hello there, Iceland.", chunk_chars=3)] * 2)
    client = make_client(openai_server, "wrap")
    with capture() as trace:
        stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        assert isinstance(stream, openai.Stream)
        first = next(stream)
        assert isinstance(first, openai.types.chat.ChatCompletionChunk)
        rest = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in [first, *rest]) == (
            "Hello there, Iceland."
        )
        with client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True
        ) as managed:
            assert isinstance(managed, openai.Stream)
            texts = [c.choices[0].delta.content for c in managed]
    assert "".join(t or "" for t in texts) == "Hello there, Iceland."
    assert [s.status.status_code for s in trace.spans] == [StatusCode.UNSET] * 2


def _texts(span: Any) -> str:
    return "".join(p.get("content") or "" for p in output_parts(span) if p["type"] == "text")


@pytest.mark.parametrize("ending", ["close", "with", "garbage"])
def test_a_stream_ended_early_records_what_arrived(
    openai_server: OpenAIServer, ending: str
) -> None:
    openai_server.script([Reply(content="Hello there, Iceland.", chunk_chars=3)])
    client = make_client(openai_server, "wrap")
    with capture() as trace:
        stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        if ending == "with":
            with stream:
                next(stream), next(stream), next(stream)
        else:
            next(stream), next(stream), next(stream)
            if ending == "close":
                stream.close()
            else:
                del stream
                gc.collect()
        assert len(trace.spans) == 1, "the span ends when the stream is closed or dropped"
    # The first chunk carries the role only; two text chunks of three characters arrived.
    assert _texts(llm_span(trace)) == "Hello "


def test_async_stream_closed_early_records_what_arrived(openai_server: OpenAIServer) -> None:
    openai_server.script([Reply(content="Hello there, Iceland.", chunk_chars=3)] * 2)
    client = make_client(openai_server, "wrap", is_async=True)

    async def run() -> None:
        stream = await client.responses.create(model="gpt-test", input="hi", stream=True)
        assert isinstance(stream, openai.AsyncStream)
        async with stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    break
        stream = await client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True
        )
        await anext(stream)
        await anext(stream)
        await stream.close()
        await client.close()

    with capture() as trace:
        asyncio.run(run())
    assert sorted(_texts(s) for s in trace.spans) == ["Hel", "Hel"]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error"), [(400, openai.BadRequestError), (500, openai.InternalServerError)]
)
@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_an_api_error_is_recorded_and_reraised_unchanged(  # noqa: PLR0917 - parametrized
    openai_server: OpenAIServer,
    how: str,
    status: int,
    error: type[Exception],
    api: str,
    is_async: bool,
) -> None:
    openai_server.script([Reply(status=status, error_message="model overloaded")])
    client = make_client(openai_server, how, is_async=is_async)
    with capture() as trace, pytest.raises(error) as raised:
        call(client, api, stream=False, is_async=is_async)
    assert type(raised.value) is error
    assert raised.value.status_code == status  # type: ignore[attr-defined]
    assert "model overloaded" in str(raised.value)
    span = llm_span(trace)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == f"openai.{error.__name__}"
    assert [e.name for e in span.events] == ["exception"]


def test_an_error_in_the_middle_of_a_stream_fails_the_span(openai_server: OpenAIServer) -> None:
    chunks = chat_chunks(Reply(content="Hello there"), include_usage=False)
    openai_server.script([Raw(events=[*chunks[:3], {"error": {"message": "connection lost"}}])])
    client = make_client(openai_server, "wrap")
    received: list[Any] = []
    with capture() as trace:
        stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError, match="connection lost"):
            received.extend(stream)
    span = llm_span(trace)
    assert span.status.status_code == StatusCode.ERROR
    assert _texts(span) == "".join(c.choices[0].delta.content or "" for c in received)


def test_an_odd_response_is_returned_and_the_call_is_still_traced(
    openai_server: OpenAIServer,
) -> None:
    odd = {"id": 5, "choices": [{"message": {"content": 7, "tool_calls": "x"}}], "usage": "n/a"}
    openai_server.script([Raw(body=odd)])
    client = make_client(openai_server, "wrap")
    with capture() as trace:
        result = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert result.choices[0].message.content == 7
    assert llm_span(trace).status.status_code == StatusCode.UNSET


# ---------------------------------------------------------------- switching on and off


def test_instrument_and_uninstrument_are_idempotent(openai_server: OpenAIServer) -> None:
    from openai.resources.chat.completions.completions import Completions

    original = Completions.__dict__["create"]
    instrumentor = OpenAIInstrumentor()
    assert instrumentor is OpenAIInstrumentor() is get_instrumentor("openai")
    assert "openai" in list_instrumentors()
    openai_server.script([Reply(content="one"), Reply(content="two")])
    client = make_client(openai_server, "wrap")  # wrapped AND instrumented: still one span
    with capture() as trace:
        lt.instrument("openai")
        lt.instrument("openai")
        instrumentor.instrument()
        assert instrumentor.is_instrumented
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        lt.uninstrument("openai")
        lt.uninstrument("openai")
        assert not instrumentor.is_instrumented
        assert Completions.__dict__["create"] is original
        plain_client = make_client(openai_server, "none")
        plain_client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert len(trace.spans) == 1


def test_wrap_openai_twice_records_one_span(openai_server: OpenAIServer) -> None:
    openai_server.script([Reply(content="one")])
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    assert wrap_openai(wrap_openai(client)) is client
    with capture() as trace:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert len(trace.spans) == 1


def test_unconfigured_tracing_leaves_calls_alone(openai_server: OpenAIServer) -> None:
    lt.instrument("openai")
    openai_server.script([Reply(content="fine")])
    client = make_client(openai_server, "wrap")
    result = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert result.choices[0].message.content == "fine"


def test_unknown_integration_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'openai'"):
        lt.instrument("no-such-library")


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "openai" or name.startswith("openai."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
import lucidtrace as lt
"""


@pytest.mark.parametrize(
    "statement",
    [
        "lt.instrument('openai')",
        "from lucidtrace.tracer.integrations.openai import OpenAIInstrumentor\n"
        "OpenAIInstrumentor().instrument()",
    ],
)
def test_a_missing_openai_package_says_what_to_install(statement: str) -> None:
    code = (
        BLOCKER
        + "try:\n    "
        + statement.replace("\n", "\n    ")
        + ("\nexcept ImportError as exc:\n    print(exc)\nelse:\n    print('no error')\n")
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert "pip install 'lucidtrace[openai]'" in out


def test_instrument_with_no_names_switches_on_what_is_installed() -> None:
    lt.instrument()
    assert get_instrumentor("openai").is_instrumented
    lt.uninstrument()
    assert not get_instrumentor("openai").is_instrumented


def test_concurrent_instrument_calls_patch_once() -> None:
    import threading

    from openai.resources.chat.completions.completions import Completions

    original = Completions.__dict__["create"]
    barrier = threading.Barrier(8)

    def switch_on() -> None:
        barrier.wait()
        lt.instrument("openai")

    threads = [threading.Thread(target=switch_on) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Completions.__dict__["create"].__wrapped__ is original  # one layer of patching
    lt.uninstrument("openai")
    assert Completions.__dict__["create"] is original
