"""Convention readers for GenAI content outside the current span attributes.

* **The details event.** With content on events, GenAI instrumentations put
  ``gen_ai.input.messages``, ``gen_ai.output.messages`` and ``gen_ai.system_instructions`` on a
  ``gen_ai.client.inference.operation.details`` event instead of the span; they are read exactly
  as the span attributes are (:func:`read_genai_event`).
* **The legacy indexed form** (OpenTelemetry GenAI before 1.37, OpenLLMetry):
  ``gen_ai.prompt.{i}.role`` / ``.content`` / ``.tool_call_id`` and
  ``gen_ai.completion.{i}.role`` / ``.content`` / ``.finish_reason`` /
  ``.tool_calls.{j}.id|name|arguments`` / ``.function_call.name|arguments``, plus the older single
  ``gen_ai.prompt`` / ``gen_ai.completion`` values (:func:`read_genai_legacy`). A ``content`` that
  is a JSON list of content blocks (``text``, ``thinking``, ``tool_use``) is unpacked; a
  ``thinking`` / ``reasoning`` role or a ``reasoning_content`` key is reasoning.

Both rebuild GenAI messages and hand their parts to the same step builders as the current GenAI
reader, so every encoding gives the same steps. Indices are only ever sorted, never used to size a
list: ``gen_ai.prompt.99999999999.content`` is one message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lucidtrace.store._conventions import SpanDraft, SpanView, indexed
from lucidtrace.store._jsonattr import as_text, parse_json
from lucidtrace.store._readers import add_part_steps, read_messages
from lucidtrace.tracer import semconv

__all__ = ["EVENT_INFERENCE_DETAILS", "read_genai_event", "read_genai_legacy"]

EVENT_INFERENCE_DETAILS = "gen_ai.client.inference.operation.details"
"""The GenAI event that carries an inference's messages when they are not span attributes."""

_REASONING_ROLES = frozenset({"thinking", "reasoning"})
_LEGACY_PREFIXES = ("gen_ai.prompt", "gen_ai.completion")


def read_genai_event(view: SpanView, draft: SpanDraft) -> None:
    """Messages, model and usage of a ``gen_ai.client.inference.operation.details`` event."""
    for event in view.record.events:
        if event.name != EVENT_INFERENCE_DETAILS:
            continue
        event_view = SpanView(view.record, event.attributes, view.problems)
        draft.fill("model", event_view.get_str(semconv.RESPONSE_MODEL))
        draft.fill("input_tokens", event_view.get_int(semconv.USAGE_INPUT_TOKENS))
        draft.fill("output_tokens", event_view.get_int(semconv.USAGE_OUTPUT_TOKENS))
        draft.fill("reasoning_tokens", event_view.get_int(semconv.USAGE_REASONING_TOKENS))
        if event_view.has(semconv.OUTPUT_MESSAGES) or event_view.has(semconv.INPUT_MESSAGES):
            read_messages(event_view, draft)


def read_genai_legacy(view: SpanView, draft: SpanDraft) -> None:
    """The indexed ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*`` form."""
    attrs = view.attributes
    # One pass over the keys tells the spans without this form (most of them) apart.
    if not any(key.startswith(_LEGACY_PREFIXES) for key in attrs):
        return
    prompts = indexed(attrs, "gen_ai.prompt.", view.problems)
    completions = indexed(attrs, "gen_ai.completion.", view.problems)
    if not (prompts or completions or "gen_ai.prompt" in attrs or "gen_ai.completion" in attrs):
        return
    inputs = [_message(f, view, "gen_ai.prompt", "user") for f in prompts]
    inputs = inputs or _whole(view, "gen_ai.prompt", "user")
    outputs = [_message(f, view, "gen_ai.completion", "assistant") for f in completions]
    outputs = outputs or _whole(view, "gen_ai.completion", "assistant")
    if inputs:
        draft.fill("input", json.dumps(inputs, ensure_ascii=False))
    if outputs:
        draft.fill("output", json.dumps(outputs, ensure_ascii=False))
    if draft.kind == "AGENT":
        texts = [p["content"] for m in outputs for p in m["parts"] if p["type"] == "text"]
        draft.fill("final_output", "\n".join(t for t in texts if isinstance(t, str)) or None)
        return
    if outputs and draft.claim("messages"):
        for message in outputs:
            for part in message["parts"]:
                add_part_steps(draft, view.record.end_ns, part)


def _whole(view: SpanView, key: str, role: str) -> list[dict[str, Any]]:
    value = view.attributes.get(key)
    if value is None:
        return []
    parsed = parse_json(value, [], where=key) if isinstance(value, str) else value
    if isinstance(parsed, list) and all(isinstance(m, Mapping) for m in parsed):
        return [_message(m, view, key, role) for m in parsed]
    return [{"role": role, "parts": [{"type": "text", "content": as_text(value)}]}]


def _message(fields: Mapping[str, Any], view: SpanView, where: str, role: str) -> dict[str, Any]:
    role_value = fields.get("role")
    role = role_value if isinstance(role_value, str) and role_value else role
    parts: list[dict[str, Any]] = []
    for key in ("reasoning_content", "reasoning"):
        if isinstance(fields.get(key), str) and fields[key]:
            parts.append({"type": "reasoning", "content": fields[key]})
    content = fields.get("content")
    if role.lower() in _REASONING_ROLES and isinstance(content, str):
        parts.append({"type": "reasoning", "content": content})
    elif role == "tool" and "tool_call_id" in fields:
        call_id = as_text(fields.get("tool_call_id"))
        parts.append({"type": "tool_call_response", "id": call_id, "response": content})
    else:
        parts += _content_parts(content, view, f"{where}: content")
    for call in indexed(fields, "tool_calls.", view.problems):
        parts.append(_tool_call(call.get("id"), call.get("name"), call.get("arguments")))
    if fields.get("function_call.name") is not None:
        name, arguments = fields["function_call.name"], fields.get("function_call.arguments")
        parts.append(_tool_call(None, name, arguments))
    message: dict[str, Any] = {"role": role, "parts": parts}
    if fields.get("finish_reason") is not None:
        message["finish_reason"] = as_text(fields["finish_reason"])
    return message


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": None if call_id is None else as_text(call_id),
        "name": None if name is None else as_text(name),
        "arguments": arguments if isinstance(arguments, str | None) else as_text(arguments),
    }


def _content_parts(content: Any, view: SpanView, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        stripped = content.lstrip()
        if stripped.startswith("[") and stripped.rstrip().endswith("]"):
            blocks = parse_json(content, [], where=where)
            if isinstance(blocks, list) and blocks and all(isinstance(b, Mapping) for b in blocks):
                return [p for b in blocks for p in _block(b)]
        return [{"type": "text", "content": content}]
    view.problems.append(f"{where}: expected a string, got {type(content).__name__}")
    return [{"type": "text", "content": as_text(content)}]


def _block(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind in ("text", "input_text", "output_text"):
        return [{"type": "text", "content": as_text(block.get("text"))}]
    if kind in ("thinking", "reasoning"):
        text = block.get("thinking", block.get("text", block.get("content")))
        return [{"type": "reasoning", "content": as_text(text)}]
    if kind == "tool_use":
        return [_tool_call(block.get("id"), block.get("name"), as_text(block.get("input")))]
    return [{"type": str(kind), "content": as_text(block)}]
