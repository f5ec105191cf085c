"""Attribute and event names that lucidtrace spans carry.

lucidtrace spans are plain OpenTelemetry spans. Where the OpenTelemetry GenAI semantic conventions
define a name, lucidtrace uses it (``gen_ai.*``); everything else lives under ``lucidtrace.*``.
The ingest mapper (:mod:`lucidtrace.store.ingest`) reads these names back, so this module is the
contract between the tracer and the store: change a name here and both sides follow.

How the audit trail is encoded:

* a span's role is ``lucidtrace.span.kind`` (one of :data:`SPAN_KINDS`), plus
  ``gen_ai.operation.name`` where the GenAI conventions define an operation;
* a **thought** is an event named :data:`EVENT_THOUGHT` on the current span, carrying
  :data:`THOUGHT_TEXT`; with no current span, a zero-length ``REASONING`` span carries it;
* an **action** and its **observation** are a ``TOOL`` span (``execute_tool {name}``) with
  ``gen_ai.tool.name``, ``gen_ai.tool.call.arguments`` and ``gen_ai.tool.call.result`` (or an
  error status); the action is placed at the span's start, the observation at its end;
* a **retrieval** is a ``RETRIEVER`` span with ``gen_ai.retrieval.query.text`` and
  ``gen_ai.retrieval.documents`` (a JSON array of ``{id, content, score, source, metadata}``);
* the **answer** is an event named :data:`EVENT_ANSWER` carrying :data:`ANSWER_TEXT` and
  :data:`ANSWER_CITATIONS` (the ids of the cited documents).

Values that are not scalars (arguments, results, documents, metadata) are JSON strings.
"""

from __future__ import annotations

from typing import Final

# ----------------------------------------------------------------------------- span roles

SPAN_KIND: Final = "lucidtrace.span.kind"
"""The role of a span: one of :data:`SPAN_KINDS`."""

SPAN_KINDS: Final = (
    "AGENT",
    "LLM",
    "TOOL",
    "RETRIEVER",
    "CHAIN",
    "EMBEDDING",
    "REASONING",
    "GUARDRAIL",
    "EVALUATOR",
    "UNKNOWN",
)
"""Every value :data:`SPAN_KIND` takes (the same vocabulary as OpenInference span kinds)."""

OPERATION_NAME: Final = "gen_ai.operation.name"
"""GenAI operation: ``invoke_agent``, ``chat``, ``execute_tool``, ``retrieval``, ..."""

KIND_TO_OPERATION: Final = {
    "AGENT": "invoke_agent",
    "LLM": "chat",
    "TOOL": "execute_tool",
    "RETRIEVER": "retrieval",
    "EMBEDDING": "embeddings",
    "CHAIN": "invoke_workflow",
}
"""The ``gen_ai.operation.name`` written for each span kind that has one."""

# ----------------------------------------------------------------------------- trace-level

SESSION_ID: Final = "gen_ai.conversation.id"
"""The session (conversation, thread) a trace belongs to."""

USER_ID: Final = "lucidtrace.user.id"
"""The end user on whose behalf the agent ran (the GenAI conventions define none)."""

TAGS: Final = "lucidtrace.tags"
"""Tags of the trace: an array of strings."""

METADATA: Final = "lucidtrace.metadata"
"""Free-form metadata of the trace: a JSON object, as a string."""

TRACE_NAME: Final = "lucidtrace.trace.name"
"""Explicit name of the trace; defaults to the root span's name."""

# ----------------------------------------------------------------------------- input / output

INPUT: Final = "lucidtrace.input"
"""What a span was called with (a traced function's arguments): JSON string."""

OUTPUT: Final = "lucidtrace.output"
"""What a span produced (a traced function's return value): JSON string."""

# ----------------------------------------------------------------------------- thoughts, answers

EVENT_THOUGHT: Final = "lucidtrace.thought"
"""Event: the agent stated a piece of reasoning."""

THOUGHT_TEXT: Final = "lucidtrace.thought.text"
"""The reasoning text of a :data:`EVENT_THOUGHT` event."""

EVENT_ANSWER: Final = "lucidtrace.answer"
"""Event: the agent gave its (final) answer."""

ANSWER_TEXT: Final = "lucidtrace.answer.text"
"""The answer text of an :data:`EVENT_ANSWER` event."""

ANSWER_CITATIONS: Final = "lucidtrace.answer.citations"
"""Ids of the documents the answer cites: an array of strings."""

# ----------------------------------------------------------------------------- tools

TOOL_NAME: Final = "gen_ai.tool.name"
"""Name of the tool a ``TOOL`` span executed."""

TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
"""Id of the tool call (as issued by the model, when there is one)."""

TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
"""Description of the tool."""

TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
"""Arguments of the tool call: JSON string."""

TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
"""Result of the tool call: JSON string."""

ERROR_TYPE: Final = "error.type"
"""Class of the error that ended a span (OpenTelemetry general convention)."""

# ----------------------------------------------------------------------------- retrieval

RETRIEVAL_QUERY: Final = "gen_ai.retrieval.query.text"
"""The query a ``RETRIEVER`` span ran."""

RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"
"""Retrieved documents: JSON array of ``{id, content, score, source, metadata}``."""

DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
"""The data source a retrieval read from."""

# ----------------------------------------------------------------------------- models, usage

PROVIDER_NAME: Final = "gen_ai.provider.name"
"""Model provider (``openai``, ``anthropic``, ``local``, ...)."""

REQUEST_MODEL: Final = "gen_ai.request.model"
"""Model the request asked for."""

RESPONSE_MODEL: Final = "gen_ai.response.model"
"""Model that answered."""

INPUT_MESSAGES: Final = "gen_ai.input.messages"
"""Chat input: JSON array of ``{role, parts: [...]}`` (GenAI message format)."""

OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
"""Chat output: JSON array of ``{role, parts: [...], finish_reason}``."""

SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
"""System prompt: JSON array of parts."""

USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
"""Prompt tokens of an LLM call."""

USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
"""Completion tokens of an LLM call."""

USAGE_REASONING_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""Reasoning tokens among the completion tokens."""

AGENT_NAME: Final = "gen_ai.agent.name"
"""Name of the agent an ``AGENT`` span invoked."""
