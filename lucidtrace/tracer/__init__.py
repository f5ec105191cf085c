"""The tracer: OpenTelemetry spans carrying an agent's reasoning, actions and sources.

The public API is re-exported by :mod:`lucidtrace`; see its docstring for a quickstart.
Submodules: :mod:`~lucidtrace.tracer.semconv` (attribute names), :mod:`~lucidtrace.tracer.context`
(threads and pools), :mod:`~lucidtrace.tracer.masking`, :mod:`~lucidtrace.tracer.processor`
(the span processor) and :mod:`~lucidtrace.tracer.testing` (in-memory capture for tests).
"""

from lucidtrace.tracer import context, semconv
from lucidtrace.tracer._api import answer, retrieval, span, thought, tool_call, traced
from lucidtrace.tracer._attributes import trace_attributes
from lucidtrace.tracer._config import (
    TracerStats,
    configure,
    flush,
    get_stats,
    resolve_database_url,
    shutdown,
)
from lucidtrace.tracer._spans import SpanHandle, ToolCall
from lucidtrace.tracer.integrations import instrument, uninstrument
from lucidtrace.tracer.masking import MaskFn, mask_secrets

__all__ = [
    "MaskFn",
    "SpanHandle",
    "ToolCall",
    "TracerStats",
    "answer",
    "configure",
    "context",
    "flush",
    "get_stats",
    "instrument",
    "mask_secrets",
    "resolve_database_url",
    "retrieval",
    "semconv",
    "shutdown",
    "span",
    "thought",
    "tool_call",
    "trace_attributes",
    "traced",
    "uninstrument",
]
