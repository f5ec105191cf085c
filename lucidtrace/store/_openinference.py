"""Convention reader for OpenInference (Arize) spans.

OpenInference flattens lists into indexed attribute names: ``llm.output_messages.{i}.message.*``
(with ``message.contents.{j}.message_content.*`` and ``message.tool_calls.{j}.tool_call.*``),
``retrieval.documents.{i}.document.*``; inputs and outputs are ``input.value`` /
``output.value``; tools carry ``tool.name``. The reader rebuilds those lists and hands them to the
same step builders as the GenAI reader, so both encodings give the same steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lucidtrace.store._conventions import OPENINFERENCE_KIND, SpanDraft, SpanView, StepDraft
from lucidtrace.store._jsonattr import as_text, parse_json, unwrap_json_text
from lucidtrace.store._readers import add_observation, add_part_steps, add_react_steps, document

_MARKERS = ("input.value", "output.value", "llm.model_name", "tool.name")
_INDEX = re.compile(r"(\d+)\.(.+)")


def read_openinference(view: SpanView, draft: SpanDraft) -> None:
    """OpenInference attributes: messages, documents, tool, input/output, model and usage."""
    attrs = view.attributes
    if not (view.has(OPENINFERENCE_KIND) or any(key in attrs for key in _MARKERS)):
        return
    input_value = _value_text(attrs.get("input.value"))
    output_value = _value_text(attrs.get("output.value"))
    draft.fill("model", view.get_str("llm.model_name"))
    draft.fill("provider", view.get_str("llm.provider") or view.get_str("llm.system"))
    draft.fill("input_tokens", view.get_int("llm.token_count.prompt"))
    draft.fill("output_tokens", view.get_int("llm.token_count.completion"))
    draft.fill("reasoning_tokens", view.get_int("llm.token_count.completion_details.reasoning"))
    draft.fill("input", input_value)
    draft.fill("output", output_value)
    if draft.kind == "AGENT":
        draft.fill("final_output", output_value)
    elif draft.kind == "TOOL" and view.has("tool.name") and draft.claim("tool"):
        call_id = view.get_str("tool_call.id") or view.get_str("tool.id")
        draft.steps.append(
            StepDraft(
                view.record.start_ns,
                "ACTION",
                tool_name=view.get_str("tool.name"),
                tool_args=input_value or as_text(attrs.get("tool.parameters")),
                tool_call_id=call_id,
            )
        )
        add_observation(view, draft, output_value, call_id)
    elif draft.kind == "RETRIEVER":
        documents = indexed(attrs, "retrieval.documents.")
        if documents and draft.claim("retrieval"):
            draft.steps.append(StepDraft(view.record.start_ns, "RETRIEVAL", text=input_value))
            for fields in documents:
                doc = {k.removeprefix("document."): v for k, v in fields.items()}
                if "metadata" in doc:
                    doc["metadata"] = parse_json(doc["metadata"], view.problems, where="metadata")
                draft.documents.append(document(doc, view, "retrieval.documents"))
    messages = indexed(attrs, "llm.output_messages.")
    if messages and draft.kind != "AGENT" and draft.claim("messages"):
        for fields in messages:
            _message_steps(draft, view.record.end_ns, fields)


def _message_steps(draft: SpanDraft, ts: int, fields: Mapping[str, Any]) -> None:
    for part in indexed(fields, "message.contents."):
        kind = part.get("message_content.type")
        text = part.get("message_content.text")
        add_part_steps(draft, ts, {"type": kind, "content": text})
    content = fields.get("message.content")
    if isinstance(content, str):
        add_react_steps(draft, ts, content)
    for call in indexed(fields, "message.tool_calls."):
        add_part_steps(
            draft,
            ts,
            {
                "type": "tool_call",
                "id": call.get("tool_call.id"),
                "name": call.get("tool_call.function.name"),
                "arguments": call.get("tool_call.function.arguments"),
            },
        )


def indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Rebuild a flattened list: ``{prefix}{i}.{rest}`` keys become ``[{rest: value}, ...]``."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        match = _INDEX.fullmatch(key[len(prefix) :])
        if match is not None:
            groups.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [groups[i] for i in sorted(groups)]


def _value_text(value: Any) -> str | None:
    if value is None:
        return None
    return unwrap_json_text(value) if isinstance(value, str) else as_text(value)
