"""One LLM span per model call: ChatOpenAI with both integrations, and raw-response calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

import lucidtrace as lt
from lucidtrace.tracer._config import _reset_for_tests
from lucidtrace.tracer.integrations.openai import wrap_openai
from lucidtrace.tracer.testing import TraceCapture, capture
from tests.integration.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "x"}]


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    _reset_for_tests()
    yield
    lt.uninstrument("openai")
    lt.uninstrument("langchain")
    _reset_for_tests()


def _llm_spans(trace: TraceCapture) -> list[Any]:
    return [s for s in trace.spans if s.attributes.get("lucidtrace.span.kind") == "LLM"]


def _texts(span: Any) -> list[str]:
    messages = json.loads(span.attributes["gen_ai.output.messages"])
    return [p["content"] for m in messages for p in m["parts"] if p["type"] == "text"]


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
def test_chat_openai_with_both_integrations_records_one_llm_span_per_call(
    openai_server: OpenAIServer, streaming: bool
) -> None:
    openai_server.script([Reply(content="first"), Reply(content="second")])
    lt.instrument("langchain", "openai")
    model = ChatOpenAI(
        model="scripted-model",
        base_url=openai_server.base_url,
        api_key=SecretStr("sk-test"),
        max_retries=0,
        streaming=streaming,
    )
    with capture() as trace:
        assert model.invoke("one").content == "first"
        assert model.invoke("two").content == "second"
    spans = _llm_spans(trace)
    assert len(spans) == 2, [(s.name, s.attributes.get("gen_ai.operation.name")) for s in spans]
    assert sorted(t for s in spans for t in _texts(s)) == ["first", "second"]
    assert all(s.parent is None for s in spans)  # each is its own call's root


def test_openai_call_outside_a_langchain_llm_run_is_still_recorded(
    openai_server: OpenAIServer,
) -> None:
    """Inside a LangChain tool (not an LLM run), an instrumented OpenAI call gets its span."""
    from langchain_core.tools import tool

    openai_server.script([Reply(content="inner")])
    lt.instrument("langchain", "openai")
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)

    @tool
    def ask(q: str) -> str:
        """Ask the model."""
        reply = client.chat.completions.create(model="m", messages=MESSAGES)
        return str(reply.choices[0].message.content)

    with capture() as trace:
        assert ask.invoke("q") == "inner"
    client.close()
    (span,) = _llm_spans(trace)
    (tool_span,) = [s for s in trace.spans if s.name == "execute_tool ask"]
    assert span.parent is not None
    assert span.parent.span_id == tool_span.context.span_id
    assert _texts(span) == ["inner"]


@pytest.mark.parametrize("how", ["raw", "streaming"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "sse"])
def test_raw_response_calls_record_their_output(
    openai_server: OpenAIServer, how: str, stream: bool
) -> None:
    openai_server.script([Reply(content="raw text")])
    client = wrap_openai(
        openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    )
    with capture() as trace:
        if how == "raw":
            response = client.chat.completions.with_raw_response.create(
                model="m", messages=MESSAGES, stream=stream
            )
            parsed = response.parse()
            text = (
                "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
                if stream
                else parsed.choices[0].message.content
            )
        else:
            with client.chat.completions.with_streaming_response.create(
                model="m", messages=MESSAGES, stream=stream
            ) as response:
                parsed = response.parse()
                text = (
                    "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
                    if stream
                    else parsed.choices[0].message.content
                )
    client.close()
    assert text == "raw text"
    (span,) = _llm_spans(trace)
    assert "".join(_texts(span)) == "raw text"


# OpenLLMetry's OpenAI instrumentation, when an earlier test of the session left it installed,
# calls the async response's parse() without awaiting it: not this integration's warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_async_streaming_response_records_its_output(openai_server: OpenAIServer) -> None:
    openai_server.script([Reply(content="async raw")])

    async def main() -> str:
        client = wrap_openai(
            openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
        )
        try:
            async with client.chat.completions.with_streaming_response.create(
                model="m", messages=MESSAGES
            ) as response:
                parsed = await response.parse()
                return str(parsed.choices[0].message.content)
        finally:
            await client.close()

    with capture() as trace:
        assert asyncio.run(main()) == "async raw"
    (span,) = _llm_spans(trace)
    assert _texts(span) == ["async raw"]


def test_streaming_response_read_as_json_is_recorded_on_close(
    openai_server: OpenAIServer,
) -> None:
    openai_server.script([Reply(content="as json")])
    client = wrap_openai(
        openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    )
    with (
        capture() as trace,
        client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES
        ) as response,
    ):
        body: Any = response.json()
    client.close()
    assert body["choices"][0]["message"]["content"] == "as json"
    (span,) = _llm_spans(trace)
    assert _texts(span) == ["as json"]
