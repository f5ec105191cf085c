"""Tracing an OpenAI call never changes the request the SDK sends."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from lucidtrace.tracer.integrations.openai import wrap_openai
from lucidtrace.tracer.testing import capture
from tests.integration.openai_server import OpenAIServer, Reply

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_openai")]

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "hello"},
]
TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {}}}]


def _send(server: OpenAIServer, *, traced: bool, api: str) -> dict[str, Any]:
    server.script([Reply(content="hi")])
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        if traced:
            wrap_openai(client)
        if api == "chat":
            client.chat.completions.create(
                model="m", messages=(m for m in MESSAGES), tools=iter(TOOLS)
            )
        else:
            client.responses.create(model="m", input=(m for m in MESSAGES))
    body = server.requests[-1].body
    assert isinstance(body, dict)
    return body


def test_generator_messages_and_tools_reach_the_sdk_unchanged(openai_server: OpenAIServer) -> None:
    with capture() as trace:
        traced = _send(openai_server, traced=True, api="chat")
    # What the untraced SDK sends for these generators (compared as data: another
    # instrumentation an earlier test left installed may itself consume an untraced call's).
    assert traced["messages"] == MESSAGES
    assert traced["tools"] == TOOLS
    (span,) = [s for s in trace.spans if s.attributes.get("lucidtrace.span.kind") == "LLM"]
    inputs = json.loads(str(span.attributes["gen_ai.input.messages"]))
    assert [m["role"] for m in inputs] == ["system", "user"]


def test_responses_generator_input_is_left_to_the_sdk(openai_server: OpenAIServer) -> None:
    """The SDK takes Responses ``input`` as a list only: a generator fails the same way traced."""
    errors = []
    for traced in (False, True):
        with capture(), pytest.raises(TypeError, match="not JSON serializable") as caught:
            _send(openai_server, traced=traced, api="responses")
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]
