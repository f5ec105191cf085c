"""OpenAI request and response payloads as GenAI span attributes (pure functions, no openai import).

Chat Completions and Responses API payloads become ``gen_ai.input.messages`` /
``gen_ai.output.messages`` (messages of typed parts: ``text``, ``reasoning``, ``tool_call``,
``tool_call_response``, ``uri``), the request parameters, the response model and id, finish
reasons and usage. Reasoning is taken from wherever the API put it: ``reasoning_content`` (or
``reasoning``) on a chat message, reasoning items of a Responses API output (summary and content
text), and ``<think>...</think>`` blocks in the text, which are split off as reasoning parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.util.types import AttributeValue

# The mapper's rule for <think> blocks, so recorded parts and stored steps split text alike.
from lucidtrace.store._react import split_think
from lucidtrace.tracer import semconv
from lucidtrace.tracer._serialize import to_json

__all__ = [
    "chat_input_messages",
    "chat_output_messages",
    "chat_response_attributes",
    "plain",
    "request_attributes",
    "responses_input_messages",
    "responses_output_messages",
    "responses_response_attributes",
]

_SENTINELS = frozenset({"NotGiven", "Omit"})

_CHAT_PARAMS: Mapping[str, str] = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}
"""Request parameters recorded as they are (numbers), by their GenAI attribute."""

CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
"""Prompt tokens served from the provider's cache."""


def given(value: Any) -> bool:
    """Whether a keyword argument was given (``None`` and the SDK's omit sentinels are not)."""
    return value is not None and type(value).__name__ not in _SENTINELS


def plain(value: Any) -> Any:
    """SDK models (pydantic) as plain dicts and lists; anything else unchanged."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", warnings=False, exclude_none=True)
        except Exception:  # a model that cannot dump itself is recorded as text
            return repr(value)
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else to_json(value)


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """A GenAI ``tool_call`` part (arguments parsed when they are JSON)."""
    part: dict[str, Any] = {"type": "tool_call", "id": _text(call_id), "name": _text(name)}
    if arguments is not None:
        part["arguments"] = _arguments(arguments)
    return part


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, list):
        return [{"type": "text", "content": _text(content)}]
    parts: list[dict[str, Any]] = []
    for item in content:
        if isinstance(item, str):
            parts.append({"type": "text", "content": item})
            continue
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": _text(item.get("text"))})
        elif kind == "refusal":
            parts.append({"type": "text", "content": _text(item.get("refusal"))})
        elif kind in ("image_url", "input_image"):
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            parts.append({"type": "uri", "modality": "image", "uri": _text(url)})
        else:
            parts.append({"type": str(kind or "unknown"), "content": to_json(item)})
    return parts


def _reasoning_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return [{"type": "reasoning", "content": value}]
    return []


def _output_text_parts(text: str) -> list[dict[str, Any]]:
    thoughts, rest = split_think(text)
    parts = [{"type": "reasoning", "content": t} for t in thoughts]
    if rest or not thoughts:
        parts.append({"type": "text", "content": rest if thoughts else text})
    return parts


# ---------------------------------------------------------------- chat completions


def chat_input_messages(messages: Any) -> list[dict[str, Any]]:
    """The ``messages`` of a chat request as GenAI input messages."""
    result: list[dict[str, Any]] = []
    for raw in plain(messages) if isinstance(messages, list | tuple) else []:
        if not isinstance(raw, Mapping):
            continue
        role = str(raw.get("role") or "user")
        parts = _reasoning_parts(raw)
        if role in ("tool", "function"):
            response = raw.get("content")
            if isinstance(response, list):
                response = "".join(p.get("content") or "" for p in _content_parts(response))
            call_id = raw.get("tool_call_id", raw.get("name"))
            parts.append({"type": "tool_call_response", "id": _text(call_id), "response": response})
        else:
            parts += _content_parts(raw.get("content"))
        for call in raw.get("tool_calls") or []:
            if isinstance(call, Mapping):
                function = call.get("function") or {}
                parts.append(
                    tool_call_part(call.get("id"), function.get("name"), function.get("arguments"))
                )
        function_call = raw.get("function_call")
        if isinstance(function_call, Mapping):
            parts.append(
                tool_call_part(None, function_call.get("name"), function_call.get("arguments"))
            )
        message: dict[str, Any] = {"role": role, "parts": parts}
        if isinstance(raw.get("name"), str) and role not in ("tool", "function"):
            message["name"] = raw["name"]
        result.append(message)
    return result


def chat_output_messages(completion: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The choices of a (plain-dict) chat completion as GenAI output messages."""
    messages: list[dict[str, Any]] = []
    choices = completion.get("choices") or []
    for choice in sorted(
        (c for c in choices if isinstance(c, Mapping)), key=lambda c: c.get("index") or 0
    ):
        message = choice.get("message") or {}
        parts = _reasoning_parts(message)
        content = message.get("content")
        if isinstance(content, str):
            parts += _output_text_parts(content)
        elif content is not None:
            parts += _content_parts(content)
        if isinstance(message.get("refusal"), str):
            parts.append({"type": "text", "content": message["refusal"]})
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping):
                function = call.get("function") or {}
                parts.append(
                    tool_call_part(call.get("id"), function.get("name"), function.get("arguments"))
                )
        function_call = message.get("function_call")
        if isinstance(function_call, Mapping):
            parts.append(
                tool_call_part(None, function_call.get("name"), function_call.get("arguments"))
            )
        out: dict[str, Any] = {"role": str(message.get("role") or "assistant"), "parts": parts}
        if choice.get("finish_reason") is not None:
            out["finish_reason"] = str(choice["finish_reason"])
        messages.append(out)
    return messages


def _usage_attributes(
    usage: Any, input_key: str, output_key: str, in_details: str, out_details: str
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    if not isinstance(usage, Mapping):
        return attributes
    for key, attribute in (
        (input_key, semconv.USAGE_INPUT_TOKENS),
        (output_key, semconv.USAGE_OUTPUT_TOKENS),
    ):
        if isinstance(usage.get(key), int):
            attributes[attribute] = usage[key]
    details = usage.get(out_details)
    if isinstance(details, Mapping) and isinstance(details.get("reasoning_tokens"), int):
        attributes[semconv.USAGE_REASONING_TOKENS] = details["reasoning_tokens"]
    details = usage.get(in_details)
    if isinstance(details, Mapping) and isinstance(details.get("cached_tokens"), int):
        attributes[CACHE_READ_TOKENS] = details["cached_tokens"]
    return attributes


def _response_head(data: Mapping[str, Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    if isinstance(data.get("id"), str):
        attributes["gen_ai.response.id"] = data["id"]
    if isinstance(data.get("model"), str):
        attributes[semconv.RESPONSE_MODEL] = data["model"]
    return attributes


def chat_response_attributes(completion: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Span attributes of a (plain-dict) chat completion: output, model, finish, usage."""
    attributes = _response_head(completion)
    messages = chat_output_messages(completion)
    attributes[semconv.OUTPUT_MESSAGES] = to_json(messages)
    reasons = [m["finish_reason"] for m in messages if "finish_reason" in m]
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(reasons)
    usage = _usage_attributes(
        completion.get("usage"),
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    )
    attributes.update(usage)
    return attributes


# ---------------------------------------------------------------- responses


def responses_input_messages(value: Any) -> list[dict[str, Any]]:
    """The ``input`` of a Responses API request as GenAI input messages."""
    if isinstance(value, str):
        return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    messages: list[dict[str, Any]] = []
    for item in plain(value) if isinstance(value, list | tuple) else []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "function_call":
            part = tool_call_part(item.get("call_id"), item.get("name"), item.get("arguments"))
            messages.append({"role": "assistant", "parts": [part]})
        elif kind == "function_call_output":
            part = {
                "type": "tool_call_response",
                "id": _text(item.get("call_id")),
                "response": item.get("output"),
            }
            messages.append({"role": "tool", "parts": [part]})
        elif kind == "reasoning":
            messages.append({"role": "assistant", "parts": _reasoning_item_parts(item)})
        elif kind in (None, "message"):
            role = str(item.get("role") or "user")
            messages.append({"role": role, "parts": _content_parts(item.get("content"))})
        else:
            messages.append(
                {"role": "user", "parts": [{"type": str(kind), "content": to_json(item)}]}
            )
    return messages


def _reasoning_item_parts(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    texts = [
        s.get("text")
        for key in ("summary", "content")
        for s in item.get(key) or []
        if isinstance(s, Mapping) and isinstance(s.get("text"), str) and s.get("text")
    ]
    return [{"type": "reasoning", "content": t} for t in texts]


_FINISH = {"incomplete": "length", "failed": "error", "cancelled": "error"}


def responses_output_messages(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``output`` items of a (plain-dict) Responses API response as one GenAI message."""
    parts: list[dict[str, Any]] = []
    has_calls = False
    for item in response.get("output") or []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            parts += _reasoning_item_parts(item)
        elif kind == "function_call":
            has_calls = True
            parts.append(
                tool_call_part(item.get("call_id"), item.get("name"), item.get("arguments"))
            )
        elif kind == "message":
            for part in _content_parts(item.get("content")):
                if part["type"] == "text" and isinstance(part.get("content"), str):
                    parts += _output_text_parts(part["content"])
                else:
                    parts.append(part)
        elif kind is not None:
            parts.append({"type": str(kind), "content": to_json(item)})
    status = response.get("status")
    finish = "tool_calls" if has_calls else _FINISH.get(str(status), "stop")
    return [{"role": "assistant", "parts": parts, "finish_reason": finish}]


def responses_response_attributes(response: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Span attributes of a (plain-dict) Responses API response: output, model, finish, usage."""
    attributes = _response_head(response)
    messages = responses_output_messages(response)
    attributes[semconv.OUTPUT_MESSAGES] = to_json(messages)
    attributes["gen_ai.response.finish_reasons"] = tuple(m["finish_reason"] for m in messages)
    usage = _usage_attributes(
        response.get("usage"),
        "input_tokens",
        "output_tokens",
        "input_tokens_details",
        "output_tokens_details",
    )
    attributes.update(usage)
    return attributes


# ---------------------------------------------------------------- requests


def request_attributes(api: str, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Span attributes of a ``create`` call's keyword arguments (``api``: chat or responses)."""
    attributes: dict[str, AttributeValue] = {}
    model = kwargs.get("model")
    if given(model):
        attributes[semconv.REQUEST_MODEL] = str(model)
    for key, attribute in _CHAT_PARAMS.items():
        value = kwargs.get(key)
        if given(value) and isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = (stop,)
    elif isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop) and stop:
        attributes["gen_ai.request.stop_sequences"] = tuple(stop)
    tools = kwargs.get("tools")
    if given(tools) and isinstance(tools, list | tuple):
        attributes["gen_ai.tool.definitions"] = to_json(plain(tools))
    if api == "chat":
        messages = chat_input_messages(kwargs.get("messages"))
    else:
        messages = responses_input_messages(kwargs.get("input"))
        instructions = kwargs.get("instructions")
        if isinstance(instructions, str):
            attributes[semconv.SYSTEM_INSTRUCTIONS] = to_json(
                [{"type": "text", "content": instructions}]
            )
    attributes[semconv.INPUT_MESSAGES] = to_json(messages)
    return attributes
