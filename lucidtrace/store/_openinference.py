"""Convention reader for OpenInference (Arize) spans.

OpenInference flattens lists into indexed attribute names: ``llm.output_messages.{i}.message.*``
(with ``message.contents.{j}.message_content.*`` and ``message.tool_calls.{j}.tool_call.*``),
``retrieval.documents.{i}.document.*``; inputs and outputs are ``input.value`` /
``output.value``; tools carry ``tool.name``. The reader rebuilds those lists and hands them to the
same step builders as the GenAI reader, so both encodings give the same steps.

``openinference-instrumentation-langchain`` leaves some of the audit trail only inside
``output.value`` (LangChain objects serialized as JSON), and the reader looks there too:

* a text-completion LLM (no ``llm.output_messages``): the generations' text (ReAct text);
* a chat model's reasoning (``additional_kwargs.reasoning_content``, ``reasoning`` /
  ``thinking`` content blocks), which the flattened messages drop;
* a tool's result given as a ``ToolMessage``: its content is the observation, its
  ``tool_call_id`` links the call to the model's proposal, ``status: "error"`` marks an error;
* a document id kept in the document's metadata (``id``; also ``source`` and ``score``);
* the final answer of a LangGraph graph: the last AI message of the outermost graph span.

The instrumentation calls any run whose name contains "agent" an ``AGENT``; LangChain's own
plumbing runnables (``RunnableAssign<agent_scratchpad>``) are not agents, and their output is
not taken as an answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from lucidtrace.store._conventions import (
    OPENINFERENCE_KIND,
    SpanDraft,
    SpanView,
    StepDraft,
    indexed,
)
from lucidtrace.store._jsonattr import as_text, parse_json, unwrap_json_text
from lucidtrace.store._readers import add_observation, add_part_steps, add_react_steps, document

_MARKERS = ("input.value", "output.value", "llm.model_name", "tool.name")
_PLUMBING = re.compile(r"^Runnable\w*<")
_REASONING_BLOCKS = ("reasoning", "thinking", "reasoning_content")


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
        if output_value and not _PLUMBING.match(view.record.name):
            draft.fill("final_output", _graph_answer(output_value) or output_value)
    elif draft.kind == "TOOL" and view.has("tool.name") and draft.claim("tool"):
        _tool_steps(view, draft, input_value, output_value)
    elif draft.kind == "RETRIEVER":
        _retrieval_steps(view, draft, input_value)
    elif draft.kind == "CHAIN" and output_value and _is_graph_root(view):
        draft.fill("final_output", _graph_answer(output_value))
    messages = indexed(attrs, "llm.output_messages.", view.problems)
    if draft.kind != "AGENT" and (messages or draft.kind == "LLM") and draft.claim("messages"):
        _llm_steps(view, draft, messages, output_value)


def _llm_steps(
    view: SpanView, draft: SpanDraft, messages: list[dict[str, Any]], output_value: str | None
) -> None:
    generations = _generations(output_value)
    ts = view.record.end_ns
    if not messages:  # a text-completion model: its generations' text
        for generation in generations:
            text = generation.get("text") if isinstance(generation, Mapping) else None
            if isinstance(text, str):
                add_react_steps(draft, ts, text)
        return
    for i, fields in enumerate(messages):
        if not any(
            part.get("message_content.type") == "reasoning"
            for part in indexed(fields, "message.contents.", view.problems)
        ):
            for text in _reasoning(generations[i] if i < len(generations) else None):
                add_part_steps(draft, ts, {"type": "reasoning", "content": text})
        _message_steps(draft, ts, fields, view.problems)


def _tool_steps(
    view: SpanView, draft: SpanDraft, input_value: str | None, output_value: str | None
) -> None:
    call_id = view.get_str("tool_call.id") or view.get_str("tool.id")
    message = _tool_message(output_value)
    if message is not None:
        call_id = call_id or as_text(message.get("tool_call_id"))
        output_value = _content_text(message.get("content"))
    draft.steps.append(
        StepDraft(
            view.record.start_ns,
            "ACTION",
            tool_name=view.get_str("tool.name"),
            tool_args=input_value or as_text(view.attributes.get("tool.parameters")),
            tool_call_id=call_id,
        )
    )
    if message is not None and message.get("status") == "error":
        draft.steps.append(
            StepDraft(
                view.record.end_ns,
                "OBSERVATION",
                text=output_value,
                tool_call_id=call_id,
                is_error=True,
            )
        )
        return
    add_observation(view, draft, output_value, call_id)


def _retrieval_steps(view: SpanView, draft: SpanDraft, input_value: str | None) -> None:
    documents = indexed(view.attributes, "retrieval.documents.", view.problems)
    if not documents or not draft.claim("retrieval"):
        return
    draft.steps.append(StepDraft(view.record.start_ns, "RETRIEVAL", text=input_value))
    for fields in documents:
        doc = {k.removeprefix("document."): v for k, v in fields.items()}
        if "metadata" in doc:
            doc["metadata"] = parse_json(doc["metadata"], view.problems, where="metadata")
        metadata = doc.get("metadata")
        if isinstance(metadata, Mapping):  # vector stores keep id, source, score here
            for key in ("id", "source", "score"):
                if doc.get(key) is None and metadata.get(key) is not None:
                    doc[key] = metadata[key]
        draft.documents.append(document(doc, view, "retrieval.documents"))


def _message_steps(
    draft: SpanDraft, ts: int, fields: Mapping[str, Any], problems: list[str]
) -> None:
    for part in indexed(fields, "message.contents.", problems):
        kind = part.get("message_content.type")
        text = part.get("message_content.text")
        add_part_steps(draft, ts, {"type": kind, "content": text})
    content = fields.get("message.content")
    if isinstance(content, str):
        add_react_steps(draft, ts, content)
    for call in indexed(fields, "message.tool_calls.", problems):
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


def _value_text(value: Any) -> str | None:
    if value is None:
        return None
    return unwrap_json_text(value) if isinstance(value, str) else as_text(value)


# ----------------------------------------------------------------------------- LangChain JSON


def _loads(text: str | None) -> Any:
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _message_fields(message: Any) -> Mapping[str, Any] | None:
    """The fields of a serialized LangChain message, in any of its JSON shapes."""
    if not isinstance(message, Mapping):
        return None
    for key in ("kwargs", "data"):  # {"lc": 1, "kwargs": ...} / {"type": ..., "data": ...}
        inner = message.get(key)
        if isinstance(inner, Mapping):
            return inner
    return message


def _generations(output_value: str | None) -> list[Any]:
    """The first prompt's generations of a serialized ``LLMResult``."""
    result = _loads(output_value)
    generations = result.get("generations") if isinstance(result, Mapping) else None
    if isinstance(generations, list) and generations and isinstance(generations[0], list):
        return list(generations[0])
    return []


def _reasoning(generation: Any) -> list[str]:
    """Reasoning texts of a chat generation's message."""
    fields = _message_fields(generation.get("message")) if isinstance(generation, Mapping) else None
    if fields is None:
        return []
    texts: list[str] = []
    extra = fields.get("additional_kwargs")
    if isinstance(extra, Mapping) and isinstance(extra.get("reasoning_content"), str):
        texts.append(extra["reasoning_content"])
    content = fields.get("content")
    for block in content if isinstance(content, list) else ():
        if isinstance(block, Mapping) and block.get("type") in _REASONING_BLOCKS:
            text = _block_reasoning(block)
            if text:
                texts.append(text)
    return [t for t in texts if t.strip()]


def _block_reasoning(block: Mapping[str, Any]) -> str | None:
    for key in ("reasoning", "thinking", "text"):
        if isinstance(block.get(key), str) and block[key].strip():
            return str(block[key])
    summary = block.get("summary")
    if isinstance(summary, list):
        texts = [s.get("text") for s in summary if isinstance(s, Mapping)]
        return "\n".join(t for t in texts if isinstance(t, str) and t.strip()) or None
    return None


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            b if isinstance(b, str) else b.get("text")
            for b in content
            if isinstance(b, str) or (isinstance(b, Mapping) and b.get("type") == "text")
        ]
        return "\n".join(t for t in texts if isinstance(t, str))
    return as_text(content)


def _tool_message(output_value: str | None) -> Mapping[str, Any] | None:
    """The fields of a ``ToolMessage`` a tool returned, when its output is one."""
    parsed = _loads(output_value)
    if not isinstance(parsed, Mapping) or parsed.get("type") not in ("tool", "constructor"):
        return None
    fields = _message_fields(parsed)
    if fields is None or "tool_call_id" not in fields:
        return None
    return fields


def _is_graph_root(view: SpanView) -> bool:
    """An outermost LangGraph run: LangGraph marks the nodes, not the graph, with its metadata."""
    metadata = view.get_json("metadata") if view.has("metadata") else None
    return not (isinstance(metadata, Mapping) and "langgraph_node" in metadata)


def _graph_answer(output_value: str) -> str | None:
    """The text of the last message of a graph's ``{"messages": [...]}`` output, if an answer."""
    parsed = _loads(output_value)
    messages = parsed.get("messages") if isinstance(parsed, Mapping) else None
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    fields = _message_fields(last)
    kind = last.get("type") if isinstance(last, Mapping) else None
    if fields is None or (kind != "ai" and fields.get("type") != "ai") or fields.get("tool_calls"):
        return None
    text = _content_text(fields.get("content"))
    if text is None:
        return None
    return re.sub(r"<think>.*?(?:</think>|\Z)", "", text, flags=re.DOTALL | re.IGNORECASE).strip()
