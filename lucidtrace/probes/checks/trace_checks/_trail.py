"""A trace's audit trail as the trace-only checks read it: what was seen before each step."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lucidtrace.store.repository import TraceDetail

__all__ = [
    "WORD_TO_CATEGORY",
    "Seen",
    "Trail",
    "TrailEntry",
    "args_text",
    "tool_categories",
    "tool_category",
]

_TOOL_WORDS: dict[str, tuple[str, ...]] = {
    "search": (
        "search", "web", "lookup", "retrieve", "retriever", "retrieval", "wiki", "wikipedia",
        "google", "bing", "serp", "browse", "browser", "internet", "tavily", "duckduckgo", "kb",
    ),
    "calculator": (
        "calc", "calculator", "math", "arithmetic", "compute", "eval", "evaluate", "calculate",
        "wolfram", "numexpr",
    ),
    "weather": ("weather", "forecast", "meteo", "temperature"),
    "database": ("sql", "db", "database", "postgres", "sqlite", "table"),
    "python": ("python", "code", "interpreter", "repl", "exec"),
    "currency": ("currency", "fx", "exchange", "convert", "converter", "conversion"),
    "translate": ("translate", "translator", "translation"),
    "email": ("email", "mail", "inbox"),
    "calendar": ("calendar", "schedule", "event", "events"),
    "file": ("file", "files", "read", "reader", "fs", "filesystem"),
    "stock": ("stock", "stocks", "ticker", "quote", "market", "price", "prices"),
}  # fmt: skip
"""Words in a tool's name that say what kind of tool it is (the synonyms plans use)."""

WORD_TO_CATEGORY = {word: category for category, words in _TOOL_WORDS.items() for word in words}
"""A word of a tool's name (or of a sentence naming a tool) -> the kind of tool."""


def _name_words(tool_name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", tool_name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def tool_category(tool_name: str) -> str:
    """The kind of tool a name denotes (``web_search`` -> ``search``), else the name itself.

    The first word of the name with a known kind decides; :func:`tool_categories` gives all.
    """
    words = _name_words(tool_name)
    for word in words:
        category = WORD_TO_CATEGORY.get(word)
        if category is not None:
            return category
    return "_".join(words) or tool_name.lower()


def tool_categories(tool_name: str) -> set[str]:
    """Every kind of tool a word of the name denotes (``python_eval``: python and calculator).

    Empty when no word of the name is known (``get_current_conditions``).
    """
    return {WORD_TO_CATEGORY[word] for word in _name_words(tool_name) if word in WORD_TO_CATEGORY}


@dataclass(frozen=True)
class Seen:
    """A recorded observation: a tool result, a retrieved document or the question."""

    kind: str  # "question", "observation", "document", "action"
    text: str
    step: tuple[str, int] | None
    index: int
    tool: str | None = None
    doc_id: str | None = None


@dataclass(frozen=True)
class TrailEntry:
    """One step with its position and the observations recorded before it."""

    index: int
    type: str
    text: str
    step: tuple[str, int]
    tool_name: str | None
    tool_args: str | None
    citations: tuple[str, ...]
    seen_before: tuple[Seen, ...] = field(default=())


@dataclass(frozen=True)
class Trail:
    """The steps of a trace in reading order, with what each step could have seen."""

    entries: list[TrailEntry]
    documents: list[Seen]
    question: str

    @classmethod
    def from_detail(cls, detail: TraceDetail) -> Trail:
        """Build the trail of a stored trace."""
        docs_by_span: dict[str, list[Any]] = {}
        for doc in detail.documents:
            docs_by_span.setdefault(doc.span_id, []).append(doc)
        tools_by_span: dict[str, str] = {}
        tools_by_call: dict[str, str] = {}
        for entry in detail.steps:
            step = entry.step
            if step.type == "ACTION" and step.tool_name:
                tools_by_span.setdefault(step.span_id, step.tool_name)
                if step.tool_call_id:
                    tools_by_call[step.tool_call_id] = step.tool_name
        question = _plain_text(detail.trace.input or "")
        seen: list[Seen] = []
        if question:
            seen.append(Seen("question", question, None, 0))
        documents: list[Seen] = []
        entries: list[TrailEntry] = []
        for entry in detail.steps:
            step = entry.step
            where = (step.span_id, step.seq)
            text = step.text or ""
            entries.append(
                TrailEntry(
                    index=entry.index,
                    type=step.type,
                    text=text,
                    step=where,
                    tool_name=step.tool_name,
                    tool_args=step.tool_args,
                    citations=tuple(str(c) for c in (step.citations or []) if c is not None),
                    seen_before=tuple(seen),
                )
            )
            if step.type == "OBSERVATION":
                tool = tools_by_call.get(step.tool_call_id or "") or tools_by_span.get(step.span_id)
                seen.append(Seen("observation", _plain_text(text), where, entry.index, tool=tool))
            elif step.type == "ACTION" and step.tool_args:
                seen.append(
                    Seen("action", _plain_text(step.tool_args), where, entry.index, step.tool_name)
                )
            elif step.type == "RETRIEVAL":
                for doc in docs_by_span.get(step.span_id, []):
                    item = Seen(
                        "document",
                        doc.content or "",
                        where,
                        entry.index,
                        tool="retrieval",
                        doc_id=doc.doc_id,
                    )
                    seen.append(item)
                    documents.append(item)
        for doc in detail.documents:
            # Documents of a retrieval span without a RETRIEVAL step still count as retrieved.
            if not any(item.doc_id == doc.doc_id and item.text == (doc.content or "")
                       for item in documents):  # fmt: skip
                documents.append(
                    Seen("document", doc.content or "", None, 0, "retrieval", doc.doc_id)
                )
        return cls(entries=entries, documents=documents, question=question)

    def next_action(self, position: int) -> TrailEntry | None:
        """The first ACTION after entry ``position`` (a list index), or None."""
        for entry in self.entries[position + 1 :]:
            if entry.type == "ACTION":
                return entry
        return None


def _plain_text(value: str) -> str:
    """JSON text as the words it holds (keys and values), other text unchanged."""
    stripped = value.strip()
    if not stripped or stripped[0] not in '[{"':
        return value
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return value
    parts: list[str] = []
    _collect(parsed, parts)
    return " ".join(parts)


def _collect(value: Any, parts: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            parts.append(f"{key}:")
            _collect(item, parts)
    elif isinstance(value, list):
        for item in value:
            _collect(item, parts)
    elif value is not None:
        parts.append(str(value))


def args_text(tool_args: str | None) -> str:
    """A tool call's arguments as plain text."""
    return _plain_text(tool_args or "")
