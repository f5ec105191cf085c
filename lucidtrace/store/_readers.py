"""Convention readers for lucidtrace's own encoding and the OpenTelemetry GenAI conventions.

Precedence (:data:`lucidtrace.store._mapper.READERS`, first wins for every scalar field and every
source of steps):

1. ``lucidtrace``: thought and answer events, ``lucidtrace.input`` / ``lucidtrace.output``;
2. ``openinference``: ``llm.*``, ``retrieval.documents.*``, ``input.value`` / ``output.value``;
3. ``genai``: current GenAI conventions (``execute_tool`` and ``retrieval`` spans, which
   lucidtrace's own tool and retriever spans use too; ``gen_ai.input/output.messages``; usage,
   model, provider) and the deprecated names still emitted by older instrumentations
   (``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` / ``completion_tokens``);
4. ``genai_event``: the same messages carried by a ``gen_ai.client.inference.operation.details``
   event (:mod:`lucidtrace.store._genai_legacy`);
5. ``genai_legacy``: the indexed ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*`` form and the
   single ``gen_ai.prompt`` / ``gen_ai.completion`` strings (:mod:`lucidtrace.store._genai_legacy`);
6. ``openllmetry``: ``traceloop.entity.*`` of OpenLLMetry's workflow, task, agent and tool spans
   (:mod:`lucidtrace.store._openllmetry`).

The span kind has its own order (:func:`lucidtrace.store._conventions.resolve_kind`).

Steps from an LLM's output (reasoning parts, tool-call parts, ReAct text) are placed at the end of
the LLM span: that is when the model produced them. Text the model wrote is not an answer unless it
says so (``Final Answer:``); the final output of an ``AGENT`` span is its answer when the span
recorded no explicit one (see :mod:`lucidtrace.store._mapper`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lucidtrace.store._conventions import (
    TRACELOOP_KIND,
    DocumentDraft,
    SpanDraft,
    SpanView,
    StepDraft,
)
from lucidtrace.store._jsonattr import as_text, unwrap_json_text
from lucidtrace.store._react import parse_react
from lucidtrace.tracer import semconv


def read_lucidtrace(view: SpanView, draft: SpanDraft) -> None:
    """Lucidtrace's own encoding: events for thoughts and answers, input/output attributes."""
    for event in view.record.events:
        attrs = event.attributes
        if event.name == semconv.EVENT_THOUGHT:
            text = as_text(attrs.get(semconv.THOUGHT_TEXT))
            draft.steps.append(StepDraft(event.ts_ns, "THOUGHT", text=text))
        elif event.name == semconv.EVENT_ANSWER:
            citations = _citations(attrs.get(semconv.ANSWER_CITATIONS))
            text = as_text(attrs.get(semconv.ANSWER_TEXT))
            draft.steps.append(StepDraft(event.ts_ns, "ANSWER", text=text, citations=citations))
    draft.fill("input", _text_attr(view, semconv.INPUT))
    output = _text_attr(view, semconv.OUTPUT)
    draft.fill("output", output)
    # An agent that returned nothing (None is recorded as JSON null) gave no answer.
    if draft.kind == "AGENT" and _present(view.attributes.get(semconv.OUTPUT)):
        draft.fill("final_output", output)


def read_genai(view: SpanView, draft: SpanDraft) -> None:
    """OTel GenAI conventions (current, plus the deprecated names still in use)."""
    draft.fill("model", view.get_str(semconv.RESPONSE_MODEL) or view.get_str(semconv.REQUEST_MODEL))
    draft.fill("provider", view.get_str(semconv.PROVIDER_NAME) or view.get_str("gen_ai.system"))
    draft.fill(
        "input_tokens", _first_int(view, semconv.USAGE_INPUT_TOKENS, "gen_ai.usage.prompt_tokens")
    )
    draft.fill(
        "output_tokens",
        _first_int(view, semconv.USAGE_OUTPUT_TOKENS, "gen_ai.usage.completion_tokens"),
    )
    draft.fill(
        "reasoning_tokens",
        _first_int(view, semconv.USAGE_REASONING_TOKENS, "gen_ai.usage.reasoning_tokens"),
    )
    # A span of no declared kind is read by what it carries.
    unknown = draft.kind == "UNKNOWN"
    # An OpenLLMetry tool span names its tool in traceloop.* only: its reader reads it.
    genai_tool = view.has(semconv.TOOL_NAME) or not view.has(TRACELOOP_KIND)
    if (draft.kind == "TOOL" and genai_tool) or (unknown and view.has(semconv.TOOL_NAME)):
        _read_tool(view, draft)
    elif draft.kind == "RETRIEVER" or (unknown and view.has(semconv.RETRIEVAL_DOCUMENTS)):
        _read_retrieval(view, draft)
    if view.has(semconv.OUTPUT_MESSAGES) or view.has(semconv.INPUT_MESSAGES):
        read_messages(view, draft)


def _read_tool(view: SpanView, draft: SpanDraft) -> None:
    if not draft.claim("tool"):
        return
    record = view.record
    name = view.get_str(semconv.TOOL_NAME) or record.name.removeprefix("execute_tool ").strip()
    attrs = view.attributes
    # A traced function of kind "tool" records its call as the span's input and output instead
    # of the GenAI tool attributes: the same action and observation either way.
    args = as_text(attrs.get(semconv.TOOL_CALL_ARGUMENTS, _present_or_none(attrs, semconv.INPUT)))
    result = as_text(attrs.get(semconv.TOOL_CALL_RESULT, _present_or_none(attrs, semconv.OUTPUT)))
    call_id = view.get_str(semconv.TOOL_CALL_ID)
    draft.fill("input", args)
    draft.fill("output", result)
    draft.steps.append(
        StepDraft(record.start_ns, "ACTION", tool_name=name, tool_args=args, tool_call_id=call_id)
    )
    add_observation(view, draft, result, call_id)


def add_observation(
    view: SpanView, draft: SpanDraft, result: str | None, call_id: str | None
) -> None:
    """The OBSERVATION of a tool span: its result, or its error (status, exception event)."""
    record = view.record
    if record.status_code == "error":
        text = record.status_message or _exception_text(view)
        draft.steps.append(
            StepDraft(record.end_ns, "OBSERVATION", text=text, tool_call_id=call_id, is_error=True)
        )
    elif result is not None:
        text = unwrap_json_text(result)
        draft.steps.append(StepDraft(record.end_ns, "OBSERVATION", text=text, tool_call_id=call_id))


def _exception_text(view: SpanView) -> str | None:
    for event in view.record.events:
        if event.name == "exception":
            kind = as_text(event.attributes.get("exception.type"))
            message = as_text(event.attributes.get("exception.message"))
            return f"{kind}: {message}" if kind and message else (message or kind)
    return view.get_str(semconv.ERROR_TYPE)


def _read_retrieval(view: SpanView, draft: SpanDraft) -> None:
    if not draft.claim("retrieval"):
        return
    query = view.get_str(semconv.RETRIEVAL_QUERY)
    draft.fill("input", query)
    draft.fill("output", as_text(view.attributes.get(semconv.RETRIEVAL_DOCUMENTS)))
    draft.steps.append(StepDraft(view.record.start_ns, "RETRIEVAL", text=query))
    documents = view.get_json(semconv.RETRIEVAL_DOCUMENTS)
    if documents is None:
        return
    if not isinstance(documents, list):
        view.problems.append(f"{semconv.RETRIEVAL_DOCUMENTS}: expected a JSON array")
        return
    for doc in documents:
        draft.documents.append(document(doc, view, semconv.RETRIEVAL_DOCUMENTS))


def document(doc: Any, view: SpanView, where: str) -> DocumentDraft:
    """One retrieved document from a ``{id, content, score, source, metadata}`` object."""
    if not isinstance(doc, dict):
        return DocumentDraft(None, None, as_text(doc), None, {})
    score = doc.get("score")
    if isinstance(score, str):
        try:
            score = float(score)
        except ValueError:
            score = None
    if score is not None and (not isinstance(score, int | float) or isinstance(score, bool)):
        view.problems.append(f"{where}: document score {score!r:.40} is not a number")
        score = None
    metadata = doc.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        metadata = {"value": metadata}
    doc_id = doc.get("id", doc.get("document_id"))
    source = doc.get("source", doc.get("uri", doc.get("url")))
    return DocumentDraft(
        doc_id=None if doc_id is None else as_text(doc_id),
        score=None if score is None else float(score),
        content=as_text(doc.get("content", doc.get("text"))),
        source=None if source is None else as_text(source),
        metadata=metadata or {},
    )


def read_messages(view: SpanView, draft: SpanDraft) -> None:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages`` (on the span or on an event)."""
    draft.fill("input", as_text(view.attributes.get(semconv.INPUT_MESSAGES)))
    draft.fill("output", as_text(view.attributes.get(semconv.OUTPUT_MESSAGES)))
    messages = view.get_json(semconv.OUTPUT_MESSAGES)
    if messages is None:
        return
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        view.problems.append(f"{semconv.OUTPUT_MESSAGES}: expected a JSON array of messages")
        return
    if draft.kind == "AGENT":
        texts = [p.get("content") for m in messages for p in _parts(m) if p.get("type") == "text"]
        draft.fill("final_output", "\n".join(t for t in texts if isinstance(t, str)) or None)
        return
    if not draft.claim("messages"):
        return
    ts = view.record.end_ns
    for message in messages:
        for part in _parts(message):
            add_part_steps(draft, ts, part)


def _parts(message: Any) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        return []
    parts = message.get("parts")
    if isinstance(parts, list):
        return [p for p in parts if isinstance(p, dict)]
    content = message.get("content")  # the older {role, content} shape
    return [{"type": "text", "content": content}] if isinstance(content, str) else []


def add_part_steps(draft: SpanDraft, ts: int, part: dict[str, Any]) -> None:
    """Steps from one GenAI message part of a model's output."""
    kind = part.get("type")
    if kind == "reasoning":
        draft.steps.append(StepDraft(ts, "THOUGHT", text=as_text(part.get("content"))))
    elif kind == "tool_call":
        draft.steps.append(
            StepDraft(
                ts,
                "ACTION",
                tool_name=as_text(part.get("name")),
                tool_args=as_text(part.get("arguments")),
                tool_call_id=as_text(part.get("id")),
            )
        )
    elif kind == "text" and isinstance(part.get("content"), str):
        add_react_steps(draft, ts, part["content"])


def add_react_steps(draft: SpanDraft, ts: int, text: str) -> None:
    """THOUGHT / ACTION / ANSWER steps from ReAct text a model wrote (its observations dropped)."""
    for step in parse_react(text):
        if step.type != "OBSERVATION":
            draft.steps.append(
                StepDraft(
                    ts,
                    step.type,
                    step.text,
                    step.tool_name,
                    step.tool_args,
                    citations=list(step.citations),
                )
            )


def _present(value: Any) -> bool:
    """Whether an input/output attribute holds something (JSON ``null`` or empty is nothing)."""
    return value is not None and not (isinstance(value, str) and value.strip() in {"", "null"})


def _present_or_none(attributes: Mapping[str, Any], key: str) -> Any:
    value = attributes.get(key)
    return value if _present(value) else None


def _text_attr(view: SpanView, key: str) -> str | None:
    value = view.attributes.get(key)
    if value is None:
        return None
    return unwrap_json_text(value) if isinstance(value, str) else as_text(value)


def _first_int(view: SpanView, *keys: str) -> int | None:
    for key in keys:
        value = view.get_int(key)
        if value is not None:
            return value
    return None


def _citations(raw: Any) -> list[str]:
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = None
        raw = parsed if isinstance(parsed, list) else [raw]  # one plain id
    if isinstance(raw, list):
        return [str(c) for c in raw if c is not None]
    return []
