"""LangChain values turned into lucidtrace span attributes: messages, usage, documents, answers.

These helpers read LangChain objects by duck typing (``getattr``), so they import nothing from
LangChain and accept the dict forms that some callbacks pass instead of objects. Messages become
the GenAI message format of :data:`lucidtrace.tracer.semconv.INPUT_MESSAGES`: ``{role, parts}``
with ``text``, ``reasoning``, ``tool_call`` and ``tool_call_response`` parts.

Reasoning is found where providers put it: ``additional_kwargs["reasoning_content"]``
(DeepSeek, vLLM and other OpenAI-compatible servers), ``reasoning`` / ``thinking`` content blocks
(the Responses API summaries, Anthropic thinking), and ``<think>`` text, which stays inside the
text part: the ingest mapper splits it out (:mod:`lucidtrace.store._react`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode

from lucidtrace.tracer import semconv
from lucidtrace.tracer._serialize import to_json

_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_SESSION_KEYS = ("session_id", "thread_id", "conversation_id")
_CONTROL_FLOW = ("GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphBubbleUp")
_CITE_MARK = re.compile(r"\[([^\[\]\s,;]{1,200})\]")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def role_of(message: Any) -> str:
    """The GenAI role of a LangChain message (``user``, ``assistant``, ``system``, ``tool``)."""
    kind = _get(message, "type") or _get(message, "role") or ""
    if kind == "chat":
        kind = _get(message, "role") or "user"
    return _ROLES.get(str(kind), str(kind) or "user")


def _reasoning_text(block: Mapping[str, Any]) -> str | None:
    """The text of a ``reasoning`` / ``thinking`` content block, in any provider's shape."""
    for key in ("reasoning", "thinking", "text"):
        value = block.get(key)
        if isinstance(value, str) and value.strip():
            return value
    summary = block.get("summary")
    if isinstance(summary, list):
        texts = [s.get("text") for s in summary if isinstance(s, Mapping)]
        joined = "\n".join(t for t in texts if isinstance(t, str) and t.strip())
        return joined or None
    return None


def content_parts(content: Any) -> list[dict[str, Any]]:
    """Text and reasoning parts of a message's ``content`` (a string or a list of blocks)."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts: list[dict[str, Any]] = []
    if not isinstance(content, list):
        return parts
    for block in content:
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
            continue
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind in ("reasoning", "thinking", "reasoning_content"):
            text = _reasoning_text(block)
            if text:
                parts.append({"type": "reasoning", "content": text})
        elif kind in ("text", "output_text") and isinstance(block.get("text"), str):
            parts.append({"type": "text", "content": block["text"]})
        # tool_use / function_call blocks repeat ``message.tool_calls``; images stay out
    return parts


def _arguments(args: Any) -> str:
    if isinstance(args, str):
        return args
    return to_json(args)


def message_parts(message: Any) -> list[dict[str, Any]]:
    """The GenAI parts of one LangChain message (reasoning first, then text, then tool calls)."""
    parts: list[dict[str, Any]] = []
    extra = _get(message, "additional_kwargs") or {}
    if isinstance(extra, Mapping):
        reasoning = extra.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning.strip():
            parts.append({"type": "reasoning", "content": reasoning})
        elif isinstance(extra.get("reasoning"), Mapping):
            text = _reasoning_text(extra["reasoning"])
            if text:
                parts.append({"type": "reasoning", "content": text})
    if role_of(message) == "tool":
        parts.append(
            {
                "type": "tool_call_response",
                "id": _get(message, "tool_call_id"),
                "response": text_of(_get(message, "content")),
            }
        )
        return parts
    parts.extend(content_parts(_get(message, "content")))
    for call in _get(message, "tool_calls") or ():
        parts.append(
            {
                "type": "tool_call",
                "id": _get(call, "id"),
                "name": _get(call, "name"),
                "arguments": _arguments(_get(call, "args", {})),
            }
        )
    return parts


def genai_messages(messages: Iterable[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """LangChain messages as GenAI ``(system_instructions, messages)``."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = role_of(message)
        parts = message_parts(message)
        if role == "system":
            system.extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return system, out


def text_of(content: Any) -> str:
    """The plain text of a message content (blocks joined; reasoning left out)."""
    if isinstance(content, str):
        return content
    texts = [p["content"] for p in content_parts(content) if p["type"] == "text"]
    if texts:
        return "\n".join(texts)
    return "" if content is None else to_json(content)


def output_messages(generations: Sequence[Any]) -> list[dict[str, Any]]:
    """The GenAI output messages of one prompt's generations (chat or text completion)."""
    out: list[dict[str, Any]] = []
    for generation in generations:
        message = _get(generation, "message")
        info = _get(generation, "generation_info") or {}
        if message is not None:
            parts = message_parts(message)
            metadata = _get(message, "response_metadata") or {}
            finish = _get(metadata, "finish_reason") or _get(metadata, "stop_reason")
        else:
            text = _get(generation, "text")
            parts = [{"type": "text", "content": text}] if isinstance(text, str) else []
            finish = None
        finish = finish or (_get(info, "finish_reason") if isinstance(info, Mapping) else None)
        entry: dict[str, Any] = {"role": "assistant", "parts": parts}
        if finish:
            entry["finish_reason"] = str(finish)
        out.append(entry)
    return out


def usage(generations: Sequence[Any], llm_output: Any) -> dict[str, int]:
    """Token counts: ``input``, ``output``, ``reasoning`` (those the response reports)."""
    found: dict[str, int] = {}
    for generation in generations:
        meta = _get(_get(generation, "message"), "usage_metadata")
        if isinstance(meta, Mapping):
            _add(found, "input", meta.get("input_tokens"))
            _add(found, "output", meta.get("output_tokens"))
            details = meta.get("output_token_details")
            if isinstance(details, Mapping):
                _add(found, "reasoning", details.get("reasoning"))
    if found or not isinstance(llm_output, Mapping):
        return found
    raw = llm_output.get("token_usage") or llm_output.get("usage")
    if isinstance(raw, Mapping):
        _add(found, "input", raw.get("prompt_tokens", raw.get("input_tokens")))
        _add(found, "output", raw.get("completion_tokens", raw.get("output_tokens")))
        details = raw.get("completion_tokens_details") or raw.get("output_tokens_details")
        if isinstance(details, Mapping):
            _add(found, "reasoning", details.get("reasoning_tokens"))
    return found


def _add(found: dict[str, int], key: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        found[key] = found.get(key, 0) + value


def response_model(generations: Sequence[Any], llm_output: Any) -> str | None:
    """The model that answered, as the response names it."""
    if isinstance(llm_output, Mapping):
        for key in ("model_name", "model"):
            if isinstance(llm_output.get(key), str) and llm_output[key]:
                return str(llm_output[key])
    for generation in generations:
        metadata = _get(_get(generation, "message"), "response_metadata")
        if isinstance(metadata, Mapping):
            for key in ("model_name", "model"):
                if isinstance(metadata.get(key), str) and metadata[key]:
                    return str(metadata[key])
    return None


def document(doc: Any, rank: int) -> dict[str, Any]:
    """A LangChain ``Document`` as ``{id, content, score, source, metadata}``.

    The id is the document's ``id``, else ``metadata["id"]``, else its rank; ``source`` and
    ``score`` are taken from the metadata where a vector store put them.
    """
    metadata = dict(_get(doc, "metadata") or {})
    content = _get(doc, "page_content")
    if content is None:
        content = doc if isinstance(doc, str) else _get(doc, "content")
    doc_id = _get(doc, "id") or metadata.get("id") or metadata.get("doc_id") or str(rank)
    out: dict[str, Any] = {"id": str(doc_id), "content": content}
    score = metadata.get("score", metadata.get("relevance_score"))
    if isinstance(score, int | float) and not isinstance(score, bool):
        out["score"] = float(score)
    source = metadata.get("source", metadata.get("url"))
    if source is not None:
        out["source"] = str(source)
    if metadata:
        out["metadata"] = metadata
    return out


def strip_think(text: str) -> str:
    """``text`` without ``<think>`` blocks (reasoning is recorded apart from the answer)."""
    if "</think>" in text.lower() and "<think>" not in text.lower():
        text = text[text.lower().index("</think>") + len("</think>") :]
    return _THINK.sub("", text).strip()


def citations(message: Any, text: str, retrieved: Mapping[str, str | None]) -> list[str]:
    """Ids of the documents an answer cites.

    Args:
        message: The final message (its ``annotations`` / ``citations`` content entries count).
        text: The answer text (``[doc-3]`` markers count when ``doc-3`` was retrieved).
        retrieved: Ids of the documents retrieved in this run, with their source.

    Returns:
        The cited ids, in order of first mention.
    """
    cited: list[str] = []
    by_source = {source: doc_id for doc_id, source in retrieved.items() if source}
    content = _get(message, "content")
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, Mapping):
            continue
        for note in list(block.get("annotations") or ()) + list(block.get("citations") or ()):
            if not isinstance(note, Mapping):
                continue
            ref = note.get("document_id") or note.get("url") or note.get("source")
            ref = ref or note.get("title")
            if isinstance(ref, str) and ref:
                cited.append(by_source.get(ref, ref))
    for match in _CITE_MARK.finditer(text):
        if match.group(1) in retrieved:
            cited.append(match.group(1))
    return list(dict.fromkeys(cited))


def jsonish(value: Any) -> str:
    """A value as stored text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else to_json(value)


# ----------------------------------------------------------------------------- runs


def run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    """A run's name: the ``name`` LangChain passed, else the serialized object's name or class."""
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if serialized:
        if isinstance(serialized.get("name"), str) and serialized["name"]:
            return str(serialized["name"])
        ident = serialized.get("id")
        if isinstance(ident, list) and ident and isinstance(ident[-1], str):
            return ident[-1]
    return default


def first_str(mapping: Any, *keys: str) -> str | None:
    """The first non-empty string among ``mapping[key]`` for ``keys``."""
    if not isinstance(mapping, Mapping):
        return None
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def session_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The session a run belongs to, from its metadata (``session_id``, ``thread_id``, ...)."""
    for key in _SESSION_KEYS:
        value = (metadata or {}).get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def final_message(outputs: Any) -> Any:
    """The last message of a graph's ``messages`` output when it is an AI answer, else None."""
    if not isinstance(outputs, Mapping):
        return None
    messages = outputs.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if getattr(last, "type", None) not in ("ai", "AIMessageChunk") or getattr(
        last, "tool_calls", None
    ):
        return None
    return last


def real_error(error: BaseException) -> BaseException | None:
    """None for the exceptions LangGraph uses for control flow (interrupts, commands)."""
    if type(error).__name__ in _CONTROL_FLOW:
        return None
    return error


def record_tool_result(span: trace_api.Span, output: Any) -> None:
    """Set a tool span's result; a tool message with ``status='error'`` is the tool's error."""
    content = getattr(output, "content", output) if _is_message(output) else output
    text = jsonish(text_of(content) if _is_message(output) else content)
    call_id = getattr(output, "tool_call_id", None) if _is_message(output) else None
    if call_id:
        span.set_attribute(semconv.TOOL_CALL_ID, str(call_id))
    if _is_message(output) and getattr(output, "status", None) == "error":
        span.set_status(Status(StatusCode.ERROR, text))
        span.set_attribute(semconv.ERROR_TYPE, "ToolError")
        return
    span.set_attribute(semconv.TOOL_CALL_RESULT, to_json(text) if isinstance(text, str) else text)


def _is_message(value: Any) -> bool:
    return hasattr(value, "tool_call_id") and hasattr(value, "content")
