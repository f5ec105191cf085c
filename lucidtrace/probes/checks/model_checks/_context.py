"""A recorded trace as a teacher-forcing prompt: question, reasoning steps, answer.

Every model-based check reads the trace the same way. The question (the trace's input, or its
first user message) is the user turn of the model's chat template; the reasoning steps
(THOUGHT, ACTION, OBSERVATION, RETRIEVAL with each retrieved document) follow as the assistant's
text, in trail order; then :data:`ANSWER_PROMPT` and the final answer (the last ANSWER step, else
the trace's output). Each step and each document is a named segment, so attribution maps and
perturbations refer to the trail. In proxy mode (an API agent) a local model reads this recorded
text as if it had written it.

Nothing here imports torch at module level; :class:`Forcer` imports it when used.
"""

# ruff: noqa: PLC0415 - torch and the probe engine are imported when a check runs, so that
# listing the checks works without torch.

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lucidtrace.probes.checks.base import CheckContext, CheckResult, SavedAttribution
from lucidtrace.probes.segments import Segment, render_chat

if TYPE_CHECKING:
    from lucidtrace.probes.attribution import AttributionResult
    from lucidtrace.probes.models import LoadedModel
    from lucidtrace.store.repository import TraceDetail

ANSWER_PROMPT = "Answer:"
"""Written after the reasoning to elicit the answer (the answer follows after one space)."""

REASONING_TYPES = ("THOUGHT", "ACTION", "OBSERVATION", "RETRIEVAL")
"""Step types that make up the reasoning that precedes the answer."""

QUESTION = "question"
"""Segment name of the question."""

_CACHE_KEY = "model_checks.forced"
_OCCLUSION_KEY = "model_checks.answer_occlusion"
_FORCER_KEY = "model_checks.forcer"
_QUESTION_KEYS = ("question", "query", "input", "prompt", "text", "message", "content")


@dataclass(frozen=True)
class Piece:
    """One reasoning step (or one retrieved document) as text of the teacher-forced prompt.

    Attributes:
        name: Segment name (``step-<index>`` or ``doc:<id>``).
        text: The text as the model reads it (ends with a newline).
        kind: The step type, or ``DOCUMENT``.
        step: ``(span_id, seq)`` of the step it comes from.
        doc_id: The document id, for documents.
    """

    name: str
    text: str
    kind: str
    step: tuple[str, int] | None = None
    doc_id: str | None = None


@dataclass(frozen=True)
class ForcedTrace:
    """A trace laid out for teacher forcing.

    Attributes:
        question: The question text.
        prefix: Everything before the reasoning: the chat-templated user turn with the
            assistant's generation prompt (or ``Question: ...`` without a chat template).
        question_start: Where the question sits in :attr:`prefix`.
        pieces: The reasoning, one piece per step or document, in trail order.
        answer: The recorded final answer (stripped).
        answer_step: ``(span_id, seq)`` of the ANSWER step, when there is one.
        citations: Document ids the answer cites.
    """

    question: str
    prefix: str
    question_start: int
    pieces: tuple[Piece, ...]
    answer: str
    answer_step: tuple[str, int] | None = None
    citations: tuple[str, ...] = ()

    @property
    def continuation(self) -> str:
        """The scored answer text (with its leading space)."""
        return " " + self.answer

    @property
    def reasoning(self) -> str:
        """The reasoning text, all pieces joined."""
        return "".join(piece.text for piece in self.pieces)

    def text(self, pieces: Sequence[Piece] | None = None, *, question: str | None = None) -> str:
        """The context before the answer: prefix, the given pieces (default: all), the prompt."""
        return self.layout(pieces, question=question)[0]

    def layout(
        self,
        pieces: Sequence[Piece] | None = None,
        *,
        question: str | None = None,
        question_parts: Sequence[tuple[str | None, str]] | None = None,
    ) -> tuple[str, list[Segment]]:
        """The context before the answer and its named segments.

        Args:
            pieces: Reasoning pieces to include (default: all).
            question: A replacement question text (e.g. with a hint); the prefix is kept
                around it.
            question_parts: Named parts that make up the question (their names become
                segments instead of ``question``).
        """
        chosen = self.pieces if pieces is None else pieces
        parts = list(question_parts) if question_parts is not None else None
        text_q = "".join(t for _, t in parts) if parts is not None else question
        if text_q is None:
            text_q = self.question
        before = self.prefix[: self.question_start]
        after = self.prefix[self.question_start + len(self.question) :]
        segments: list[Segment] = []
        position = len(before)
        for name, part in parts if parts is not None else [(QUESTION, text_q)]:
            if name is not None and part.strip():
                segments.append(Segment(name, position, position + len(part)))
            position += len(part)
        text = before + text_q + after
        for piece in chosen:
            if piece.text.strip():
                segments.append(Segment(piece.name, len(text), len(text) + len(piece.text)))
            text += piece.text
        return text + ANSWER_PROMPT, segments


def inconclusive(message: str, threshold: float, **evidence: Any) -> list[CheckResult]:
    """One ``inconclusive`` result saying why."""
    return [CheckResult("inconclusive", message, threshold=threshold, evidence=evidence)]


def forced_trace(context: CheckContext) -> ForcedTrace | str:
    """The context's trace as a :class:`ForcedTrace` (cached per run), or why there is none."""
    cached = context.cache.get(_CACHE_KEY)
    if cached is None:
        cached = build_forced_trace(context.detail, context.model.tokenizer)
        context.cache[_CACHE_KEY] = cached
    return cached


def build_forced_trace(detail: TraceDetail, tokenizer: Any) -> ForcedTrace | str:
    """Lay a trace out for teacher forcing; a string says what it lacks instead.

    Steps after the last ANSWER step are ignored (they did not lead to the answer).
    """
    question = question_of(detail)
    if not question:
        return "the trace records no question (no input and no user message) to condition on"
    steps = [entry.step for entry in detail.steps]
    answer_index = max(
        (i for i, step in enumerate(steps) if step.type == "ANSWER" and (step.text or "").strip()),
        default=None,
    )
    answer_step: tuple[str, int] | None = None
    citations: tuple[str, ...] = ()
    if answer_index is not None:
        step = steps[answer_index]
        answer = (step.text or "").strip()
        answer_step = (step.span_id, step.seq)
        citations = tuple(str(c) for c in step.citations or ())
        steps = steps[:answer_index]
    else:
        answer = _plain_text(detail.trace.output)
    if not answer:
        return "the trace records no final answer (no ANSWER step and no output) to score"
    indices = {(e.step.span_id, e.step.seq): e.index for e in detail.steps}
    documents: dict[str, list[Any]] = {}
    for document in detail.documents:
        documents.setdefault(document.span_id, []).append(document)
    pieces: list[Piece] = []
    names: set[str] = set()
    for step in steps:
        if step.type not in REASONING_TYPES:
            continue
        key = (step.span_id, step.seq)
        name = f"step-{indices.get(key, len(pieces) + 1)}"
        text = _step_text(step)
        if text:
            pieces.append(Piece(name, text, step.type, key))
        if step.type == "RETRIEVAL":
            for document in documents.pop(step.span_id, []):
                content = " ".join((document.content or "").split())
                if not content:
                    continue
                doc_id = str(document.doc_id if document.doc_id is not None else document.rank)
                doc_name = _unique(f"doc:{doc_id}", names)
                pieces.append(
                    Piece(doc_name, f"[{doc_id}] {content}\n", "DOCUMENT", key, doc_id=doc_id)
                )
    prefix, start = _prefix(tokenizer, question)
    return ForcedTrace(question, prefix, start, tuple(pieces), answer, answer_step, citations)


def question_of(detail: TraceDetail) -> str:
    """The question: the trace's input (a string, or the question field of a JSON input)."""
    raw = detail.trace.input
    if raw is None:
        for span in detail.spans:
            if span.kind == "LLM" and span.input:
                raw = span.input
                break
    return _plain_text(raw)


def _plain_text(raw: Any) -> str:
    if raw is None:
        return ""
    value: Any = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return raw.strip()
    return _find_text(value).strip()


def _find_text(value: Any) -> str:
    """The question inside a JSON input: a string, a question-like field, or a user message."""
    if isinstance(value, str):
        return value
    candidates: list[Any] = []
    if isinstance(value, list):
        candidates = list(value)
    elif isinstance(value, Mapping) and value.get("role") in (None, "user"):
        candidates = [value[key] for key in _QUESTION_KEYS if key in value]
        strings = [item for item in value.values() if isinstance(item, str)]
        if len(strings) == 1:
            candidates.append(strings[0])
        candidates.extend(value[key] for key in ("messages", "args", "kwargs") if key in value)
    for candidate in candidates:
        found = _find_text(candidate)
        if found:
            return found
    return ""


def _step_text(step: Any) -> str:
    text = " ".join((step.text or "").split())
    if step.type == "THOUGHT":
        return f"{text}\n" if text else ""
    if step.type == "ACTION":
        args = " ".join((step.tool_args or "").split())
        return f"Action: {step.tool_name or 'tool'} {args}".rstrip() + "\n"
    if step.type == "OBSERVATION":
        return f"Observation: {text}\n" if text else ""
    return f"Search: {text}\n" if text else ""


def _unique(name: str, names: set[str]) -> str:
    candidate, number = name, 2
    while candidate in names:
        candidate = f"{name}#{number}"
        number += 1
    names.add(candidate)
    return candidate


def _prefix(tokenizer: Any, question: str) -> tuple[str, int]:
    """The text before the reasoning and the question's offset in it."""
    prompt = None
    if getattr(tokenizer, "chat_template", None):
        try:
            prompt = render_chat(tokenizer, [{"role": "user", "content": question}])
        except ValueError:  # a template that rewrites the question: fall back to plain text
            prompt = None
    if prompt is not None:
        text, start = prompt.text, prompt.content_offsets[0]
        # The tokenizer adds its BOS itself when it encodes; do not write it twice.
        added = tokenizer("", add_special_tokens=True)["input_ids"]
        if added:
            marker = tokenizer.decode(added)
            if marker and text.startswith(marker):
                text, start = text[len(marker) :], start - len(marker)
        return text, start
    return f"Question: {question}\n", len("Question: ")


@contextmanager
def quiet_boundaries() -> Iterator[None]:
    """Silence the scorer's tokenizer-boundary warning for the prompts built here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tokenize differently.*", category=UserWarning)
        yield


def saved(result: AttributionResult) -> SavedAttribution:
    """An attribution map as stored with a finding."""
    return SavedAttribution(result.method, result.target, result.to_dict())


def answer_occlusion(context: CheckContext, forced: ForcedTrace) -> AttributionResult:
    """Occlusion over the question and every reasoning segment, for the answer (cached)."""
    cached = context.cache.get(_OCCLUSION_KEY)
    if cached is None:
        from lucidtrace.probes.attribution import attribute

        text, segments = forced.layout()
        with quiet_boundaries():
            cached = attribute(
                context.model, text, forced.continuation, method="occlusion", segments=segments
            )
        context.cache[_OCCLUSION_KEY] = cached
    return cached


def forcer_for(context: CheckContext, forced: ForcedTrace) -> Forcer:
    """The run's shared :class:`Forcer` for this trace (its KV cache is built once)."""
    cached = context.cache.get(_FORCER_KEY)
    if cached is None:
        cached = Forcer(context.model, forced)
        context.cache[_FORCER_KEY] = cached
    return cached


def segment_totals(result: AttributionResult) -> dict[str, float]:
    """Segment totals rounded for evidence."""
    return {name: round(total, 4) for name, total in result.segment_totals.items()}


def option(context: CheckContext, check: str, name: str, default: Any) -> Any:
    """A per-check option from the caller, or ``default``."""
    return dict(context.options.get(check, {})).get(name, default)


def sentence_ends(text: str) -> list[int]:
    """Character offsets just after each sentence (or line) of ``text``."""
    ends = [match.end() for match in re.finditer(r"[.!?](?=\s)|\n", text)]
    if not ends or ends[-1] < len(text.rstrip()):
        ends.append(len(text))
    return sorted(set(ends))


_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:[.,]\d+)*)(?![\w])")


def edit_number(text: str) -> tuple[str, str, str] | None:
    """Change the last digit of the last number in ``text`` (d -> d+1 mod 10).

    Returns:
        ``(edited text, old number, new number)``, or ``None`` when ``text`` holds no number.
    """
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    old = match.group(1)
    new = old[:-1] + str((int(old[-1]) + 1) % 10)
    return text[: match.start(1)] + new + text[match.end(1) :], old, new


def retained(delta: float) -> float:
    """Share of the answer's probability kept after an intervention: ``min(1, exp(delta))``."""
    import math

    return 1.0 if delta >= 0 else math.exp(max(delta, -700.0))


@dataclass
class Forcer:
    """Scores the recorded answer after variants of the reasoning, from one shared KV cache.

    The prefix and each piece are tokenized on their own, so that a variant of one piece
    changes only that piece's tokens; all variants reuse the cache of the unchanged prefix
    and the tokens they share with the recorded reasoning.
    """

    lm: LoadedModel
    forced: ForcedTrace
    prefix_ids: list[int] = field(init=False)
    piece_ids: list[list[int]] = field(init=False)
    prompt_ids: list[int] = field(init=False)
    answer_ids: list[int] = field(init=False)
    _cache: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        tokenizer = self.lm.tokenizer
        self.prefix_ids = list(tokenizer(self.forced.prefix, add_special_tokens=True)["input_ids"])
        self.piece_ids = [self.encode(piece.text) for piece in self.forced.pieces]
        self.prompt_ids = self.encode(ANSWER_PROMPT)
        self.answer_ids = self.encode(self.forced.continuation)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return list(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def tokens_before(self, index: int, cut: int) -> int:
        """How many tokens of piece ``index`` end at or before character ``cut`` of its text."""
        encoded = self.lm.tokenizer(
            self.forced.pieces[index].text, add_special_tokens=False, return_offsets_mapping=True
        )
        return sum(1 for _, end in encoded["offset_mapping"] if end <= cut)

    def replaced(self, index: int, ids: Sequence[int]) -> list[int]:
        """The reasoning ids with piece ``index`` replaced by ``ids``."""
        out: list[int] = []
        for position, piece in enumerate(self.piece_ids):
            out.extend(ids if position == index else piece)
        return out

    @property
    def reasoning_ids(self) -> list[int]:
        """Token ids of the recorded reasoning."""
        return [token for ids in self.piece_ids for token in ids]

    def score_reasonings(
        self, reasonings: Sequence[Sequence[int]], *, batch_size: int = 8
    ) -> list[float]:
        """Summed log-probability of the answer after each reasoning (token ids)."""
        return self.score_rows([(list(r), self.answer_ids) for r in reasonings], batch_size)

    def score_rows(
        self, rows: Sequence[tuple[Sequence[int], Sequence[int]]], batch_size: int = 8
    ) -> list[float]:
        """Summed log-probability of each ``continuation`` after prefix + ``reasoning`` + prompt.

        Args:
            rows: ``(reasoning ids, continuation ids)`` pairs.
            batch_size: Rows per forward pass.
        """
        import torch

        from lucidtrace.probes.scoring import PrefixCache, check_length

        base = [*self.prefix_ids, *self.reasoning_ids]
        if self._cache is None:
            check_length(self.lm.model, len(base) + len(self.prompt_ids) + len(self.answer_ids))
            self._cache = PrefixCache.build(self.lm.model, base)
        built = []
        for reasoning, continuation in rows:
            tail = [*reasoning, *self.prompt_ids, *continuation]
            common = 0
            original = base[len(self.prefix_ids) :]
            while (
                common < min(len(reasoning), len(original))
                and reasoning[common] == original[common]
            ):
                common += 1
            keep = len(self.prefix_ids) + common
            check_length(self.lm.model, keep + len(tail) - common)
            built.append((keep, tail[common:], len(continuation)))
        totals: list[float] = []
        with torch.no_grad():
            for begin in range(0, len(built), batch_size):
                batch = built[begin : begin + batch_size]
                logprobs = self._cache.continue_rows(batch)
                totals.extend(
                    float(row[:n].sum()) for row, (_, _, n) in zip(logprobs, batch, strict=True)
                )
        return totals
