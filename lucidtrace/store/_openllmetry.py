"""Convention reader for OpenLLMetry (Traceloop) workflow, task, agent and tool spans.

OpenLLMetry's decorators (``@workflow``, ``@task``, ``@agent``, ``@tool``) mark spans with
``traceloop.span.kind`` and record the function's name, arguments and return value as
``traceloop.entity.name``, ``traceloop.entity.input`` (JSON ``{"args": [...], "kwargs": {...}}``)
and ``traceloop.entity.output`` (JSON). A tool span becomes an ACTION (its arguments: the keyword
arguments, or the single positional one) and an OBSERVATION; an agent's output is its final
output. OpenLLMetry's LLM spans carry ``llm.request.type`` and GenAI attributes (current or the
legacy indexed form), read by the GenAI readers; its underscore usage names
(``gen_ai.usage.cache_read_input_tokens``, ``llm.usage.total_tokens``) are kept as attributes.
"""

from __future__ import annotations

import json
from typing import Any

from lucidtrace.store._conventions import TRACELOOP_KIND, SpanDraft, SpanView, StepDraft
from lucidtrace.store._jsonattr import as_text, parse_json, unwrap_json_text
from lucidtrace.store._readers import add_observation

__all__ = ["read_openllmetry"]

ENTITY_NAME = "traceloop.entity.name"
ENTITY_INPUT = "traceloop.entity.input"
ENTITY_OUTPUT = "traceloop.entity.output"


def read_openllmetry(view: SpanView, draft: SpanDraft) -> None:
    """``traceloop.entity.*``: inputs, outputs, tool calls and agent outputs."""
    if not (view.has(TRACELOOP_KIND) or view.has(ENTITY_INPUT) or view.has(ENTITY_OUTPUT)):
        return
    raw_input = view.attributes.get(ENTITY_INPUT)
    output = _text(view.attributes.get(ENTITY_OUTPUT))
    draft.fill("input", _text(raw_input))
    draft.fill("output", output)
    if draft.kind == "AGENT":
        draft.fill("final_output", output)
    elif draft.kind == "TOOL" and draft.claim("tool"):
        record = view.record
        name = view.get_str(ENTITY_NAME) or record.name.removesuffix(".tool")
        args = _tool_arguments(raw_input, view)
        draft.steps.append(StepDraft(record.start_ns, "ACTION", tool_name=name, tool_args=args))
        add_observation(view, draft, output, None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return unwrap_json_text(value) if isinstance(value, str) else as_text(value)


def _tool_arguments(raw: Any, view: SpanView) -> str | None:
    """The tool's arguments: keyword arguments, or its one positional argument, as JSON."""
    if raw is None:
        return None
    parsed = parse_json(raw, view.problems, where=ENTITY_INPUT) if isinstance(raw, str) else raw
    if not isinstance(parsed, dict) or not set(parsed) <= {"args", "kwargs"}:
        return as_text(raw)
    args = parsed.get("args") or []
    kwargs = parsed.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return as_text(raw)
    if not args:
        return json.dumps(kwargs, ensure_ascii=False)
    if not kwargs and len(args) == 1:
        return as_text(args[0])
    return json.dumps(parsed, ensure_ascii=False)
