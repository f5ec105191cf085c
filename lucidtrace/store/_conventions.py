r"""What convention readers see (:class:`SpanView`) and fill in (:class:`SpanDraft`).

A convention reader is a plain callable ``reader(view, draft) -> None`` that understands one
family of attribute names (lucidtrace's own, OTel GenAI, OpenInference, ...). Readers run in a
fixed precedence order (:data:`lucidtrace.store._readers.READERS`); a scalar field keeps the first
value any reader gives it (:meth:`SpanDraft.fill`), and a source of steps (tool call, retrieval,
LLM messages) is read by the first reader that :meth:`SpanDraft.claim`\\ s it, so a span that
carries two encodings of the same thing (OpenInference dual-writing ``gen_ai.*``) gets its steps
once.

Malformed values never raise: a reader asks the view for a typed value, and a value of the wrong
type or a JSON string that does not parse comes back as ``None`` with a problem recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lucidtrace.store._jsonattr import parse_json
from lucidtrace.store._records import SpanRecord
from lucidtrace.tracer import semconv

Reader = Callable[["SpanView", "SpanDraft"], None]
"""A convention reader."""

SPAN_KINDS = frozenset(semconv.SPAN_KINDS)

OPERATION_KINDS: Mapping[str, str] = {
    "chat": "LLM",
    "text_completion": "LLM",
    "generate_content": "LLM",
    "completion": "LLM",
    "embeddings": "EMBEDDING",
    "retrieval": "RETRIEVER",
    "execute_tool": "TOOL",
    "create_agent": "AGENT",
    "invoke_agent": "AGENT",
    "invoke_workflow": "CHAIN",
}
"""``gen_ai.operation.name`` to span kind."""

OPENINFERENCE_KIND = "openinference.span.kind"
TRACELOOP_KIND = "traceloop.span.kind"
_KIND_ALIASES = {"RERANKER": "RETRIEVER", "PROMPT": "CHAIN"}

TRACELOOP_KINDS: Mapping[str, str] = {
    "workflow": "CHAIN",
    "task": "CHAIN",
    "agent": "AGENT",
    "tool": "TOOL",
    "unknown": "UNKNOWN",
}
"""OpenLLMetry's ``traceloop.span.kind`` to span kind."""

LLM_REQUEST_KINDS: Mapping[str, str] = {
    "chat": "LLM",
    "completion": "LLM",
    "embedding": "EMBEDDING",
    "rerank": "RETRIEVER",
}
"""OpenLLMetry's ``llm.request.type`` (on its LLM spans) to span kind."""

TRACE_FIELD_KEYS: Mapping[str, tuple[str, ...]] = {
    "session_id": (
        semconv.SESSION_ID,
        "session.id",
        "traceloop.association.properties.session_id",
    ),
    "user_id": (semconv.USER_ID, "user.id", "traceloop.association.properties.user_id"),
    "tags": (semconv.TAGS, "tag.tags"),
    "metadata": (semconv.METADATA, "metadata"),
    "name": (semconv.TRACE_NAME,),
}
"""Trace-level fields and the attributes that carry them, in precedence order."""

TRACE_FIELD_LIMIT = 500
"""Length of the trace's name, session_id and user_id columns."""


class SpanView:
    """Typed, lenient access to one span's (already JSON-safe) attributes."""

    def __init__(self, record: SpanRecord, attributes: Mapping[str, Any], problems: list[str]):
        self.record = record
        self.attributes = attributes
        self.problems = problems

    def has(self, key: str) -> bool:
        """Whether the span carries ``key``."""
        return key in self.attributes

    def get_str(self, key: str) -> str | None:
        """A string attribute; numbers are accepted as their text, other types are problems."""
        value = self.attributes.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.problems.append(f"{key}: expected a string, got {type(value).__name__}")
        return None

    def get_int(self, key: str) -> int | None:
        """A non-negative integer attribute (numeric strings accepted)."""
        value = self.attributes.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        self.problems.append(f"{key}: expected a non-negative integer, got {value!r:.40}")
        return None

    def get_json(self, key: str) -> Any:
        """A JSON-string attribute parsed (structured values pass through)."""
        return parse_json(self.attributes.get(key), self.problems, where=key)


@dataclass
class StepDraft:
    """A step before it gets its sequence number."""

    ts_ns: int
    type: str
    text: str | None = None
    tool_name: str | None = None
    tool_args: str | None = None
    tool_call_id: str | None = None
    is_error: bool = False
    citations: list[str] = field(default_factory=list)


@dataclass
class DocumentDraft:
    """A retrieved document, in retriever order."""

    doc_id: str | None
    score: float | None
    content: str | None
    source: str | None
    metadata: dict[str, Any]


@dataclass
class SpanDraft:
    """The values readers derive from one span."""

    kind: str
    input: str | None = None
    output: str | None = None
    final_output: str | None = None  # an agent's final output: its ANSWER if it gave none
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    steps: list[StepDraft] = field(default_factory=list)
    documents: list[DocumentDraft] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)

    def fill(self, name: str, value: Any) -> None:
        """Set a scalar field unless a reader of higher precedence already set it."""
        if value is not None and getattr(self, name) is None:
            setattr(self, name, value)

    def claim(self, source: str) -> bool:
        """Take a source of steps (``"tool"``, ``"retrieval"``, ``"messages"``); once only."""
        if source in self.claimed:
            return False
        self.claimed.add(source)
        return True


def resolve_kind(view: SpanView) -> str:
    """The span kind: the first attribute of a known value, in precedence order.

    The order is ``lucidtrace.span.kind``, ``openinference.span.kind``, ``traceloop.span.kind``,
    ``gen_ai.operation.name``, ``llm.request.type``; with none, UNKNOWN. An unknown value is
    listed as a problem and the next attribute is tried.
    """
    for key in (semconv.SPAN_KIND, OPENINFERENCE_KIND):
        value = view.get_str(key)
        if value:
            kind = _KIND_ALIASES.get(value.upper(), value.upper())
            if kind in SPAN_KINDS:
                return kind
            view.problems.append(f"{key}: unknown span kind {value!r:.60}")
    for key, table in (
        (TRACELOOP_KIND, TRACELOOP_KINDS),
        (semconv.OPERATION_NAME, OPERATION_KINDS),
        ("llm.request.type", LLM_REQUEST_KINDS),
    ):
        value = view.get_str(key)
        if value:
            found = table.get(value.lower())
            if found is not None:
                return found
            view.problems.append(f"{key}: unknown value {value!r:.60}")
    return "UNKNOWN"


INDEX_DIGITS = 20
"""The longest list index read from a flattened attribute name (ASCII digits only)."""


def indexed(
    attrs: Mapping[str, Any], prefix: str, problems: list[str] | None = None
) -> list[dict[str, Any]]:
    """Rebuild a flattened list: ``{prefix}{i}.{rest}`` keys become ``[{rest: value}, ...]``.

    Only the indices present are kept, in order (``prefix.99999999999.x`` is one entry, not a
    list that long). An index is 1 to :data:`INDEX_DIGITS` ASCII digits: a key with any other
    index (too long, negative, not a number, other scripts' digits) or without a field after it
    is skipped, and recorded in ``problems`` when given, so the rest of the list still counts.
    """
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, dot, rest = key[len(prefix) :].partition(".")
        if dot and rest and 0 < len(index) <= INDEX_DIGITS and index.isascii() and index.isdigit():
            groups.setdefault(int(index), {})[rest] = value
        elif problems is not None:
            problems.append(f"{key[:80]!r}: not a {prefix}<index>.<field> name, skipped")
    return [groups[i] for i in sorted(groups)]


def trace_fields(values: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """Trace-level fields from one span's attribute values (see :data:`TRACE_FIELD_KEYS`)."""
    found: dict[str, Any] = {}
    for name, keys in TRACE_FIELD_KEYS.items():
        for key in keys:
            raw = values.get(key)
            if raw is None:
                continue
            value = _trace_value(name, raw, problems, key)
            if value is not None:
                found[name] = value
                break
    return found


def _trace_value(  # noqa: PLR0911 - one return per field kind and failure
    name: str, raw: Any, problems: list[str], key: str
) -> Any:
    if name == "tags":
        tags = parse_json(raw, problems, where=key) if isinstance(raw, str) else raw
        if isinstance(raw, str) and not isinstance(tags, list):
            return [raw]  # one plain tag
        if isinstance(tags, list):
            return [str(t) for t in tags if t is not None]
        problems.append(f"{key}: expected a list of strings")
        return None
    if name == "metadata":
        meta = parse_json(raw, problems, where=key)
        if isinstance(meta, dict):
            return meta
        if meta is not None:
            problems.append(f"{key}: expected a JSON object")
        return None
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        text = str(raw)
        if len(text) > TRACE_FIELD_LIMIT:
            problems.append(f"{key}: {len(text)} characters, cut to {TRACE_FIELD_LIMIT}")
            text = text[:TRACE_FIELD_LIMIT]
        return text
    problems.append(f"{key}: expected a string")
    return None
