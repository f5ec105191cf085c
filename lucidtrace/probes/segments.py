"""Named character ranges of a context and their exact token ranges.

A :class:`Segment` names a span of the context text (the question, one thought, one tool result,
one retrieved document, a hint). :func:`map_segments` turns segments into token ranges through a
tokenizer's offset mapping. Chat templates wrap the user's text in role markers;
:func:`render_chat` renders the template and records where each message's content landed, so
that segments given relative to a message can be shifted into the templated text.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SegmentError(ValueError):
    """Segments cannot be mapped: they overlap, fall outside the text or own no token."""


@dataclass(frozen=True)
class Segment:
    """A named character range ``[start, end)`` of a context string."""

    name: str
    start: int
    end: int

    def shifted(self, offset: int) -> Segment:
        """The same segment moved right by ``offset`` characters."""
        return Segment(self.name, self.start + offset, self.end + offset)


@dataclass(frozen=True)
class TokenSpan:
    """A segment with its token range ``[token_start, token_end)`` in the encoded context."""

    name: str
    start: int
    end: int
    token_start: int
    token_end: int

    @property
    def tokens(self) -> range:
        """Indices of the segment's tokens."""
        return range(self.token_start, self.token_end)


def find_segment(text: str, name: str, part: str, *, occurrence: int = 0) -> Segment:
    """The segment covering the ``occurrence``-th (0-based) appearance of ``part`` in ``text``.

    Raises:
        SegmentError: ``part`` does not appear that many times.
    """
    start = -1
    for _ in range(occurrence + 1):
        start = text.find(part, start + 1)
        if start < 0:
            raise SegmentError(
                f"segment {name!r}: {part[:40]!r} occurs fewer than {occurrence + 1} times "
                "in the text; pass character offsets instead"
            )
    return Segment(name, start, start + len(part))


def join_parts(parts: Sequence[tuple[str | None, str]]) -> tuple[str, list[Segment]]:
    """Concatenate ``(name, text)`` parts into one context; named parts become segments.

    Building the context this way gives exact segments even when two parts have the same text.
    """
    pieces: list[str] = []
    segments: list[Segment] = []
    position = 0
    for name, text in parts:
        if name is not None:
            segments.append(Segment(name, position, position + len(text)))
        pieces.append(text)
        position += len(text)
    return "".join(pieces), segments


def check_segments(segments: Sequence[Segment], text_length: int) -> list[Segment]:
    """Validate segments against a text of ``text_length`` characters; return them sorted.

    Raises:
        SegmentError: A segment is empty, out of range, overlaps another or repeats a name.
    """
    names = [segment.name for segment in segments]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SegmentError(f"segment names must be unique; repeated: {duplicates}")
    ordered = sorted(segments, key=lambda segment: (segment.start, segment.end))
    for segment in ordered:
        if not 0 <= segment.start < segment.end <= text_length:
            raise SegmentError(
                f"segment {segment.name!r} [{segment.start}, {segment.end}) is empty or outside "
                f"the context of {text_length} characters"
            )
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise SegmentError(
                f"segments {before.name!r} [{before.start}, {before.end}) and {after.name!r} "
                f"[{after.start}, {after.end}) overlap; segments must be disjoint"
            )
    return ordered


def map_segments(
    text: str, offsets: Sequence[tuple[int, int]], segments: Sequence[Segment]
) -> list[TokenSpan]:
    """Map character segments of ``text`` to token ranges through an offset mapping.

    A token belongs to the segment that holds most of its non-whitespace characters (its first
    character when it is all whitespace), so that a token such as ``" The"`` whose leading space
    sits outside a segment still belongs to it. Tokens with empty offsets (special tokens) and
    tokens outside every segment belong to none.

    Args:
        text: The encoded text.
        offsets: ``(start, end)`` character offsets of each token, as returned by a fast
            tokenizer with ``return_offsets_mapping=True``.
        segments: Disjoint segments of ``text``.

    Returns:
        One :class:`TokenSpan` per segment, in the order given.

    Raises:
        SegmentError: Segments overlap, fall outside ``text``, or a segment owns no token (its
            characters are merged into tokens that belong to neighbours).
    """
    ordered = check_segments(segments, len(text))
    owner = [_owner(text, start, end, ordered) for start, end in offsets]
    spans: dict[str, TokenSpan] = {}
    for index, segment in enumerate(ordered):
        tokens = [position for position, who in enumerate(owner) if who == index]
        if not tokens:
            raise SegmentError(
                f"segment {segment.name!r} {text[segment.start : segment.end][:40]!r} owns no "
                "token: the tokenizer merged its characters into neighbouring tokens; widen it "
                "or separate it from its neighbours with whitespace"
            )
        spans[segment.name] = TokenSpan(
            segment.name, segment.start, segment.end, tokens[0], tokens[-1] + 1
        )
    return [spans[segment.name] for segment in segments]


def _owner(text: str, start: int, end: int, ordered: Sequence[Segment]) -> int | None:
    if end <= start:
        return None
    best: int | None = None
    best_count = 0
    for index, segment in enumerate(ordered):
        low, high = max(start, segment.start), min(end, segment.end)
        if low >= high:
            continue
        count = sum(not char.isspace() for char in text[low:high])
        if count > best_count:
            best, best_count = index, count
    if best is not None:
        return best
    # An all-whitespace token goes with the segment that holds its first character.
    for index, segment in enumerate(ordered):
        if segment.start <= start < segment.end:
            return index
    return None


@dataclass(frozen=True)
class ChatPrompt:
    """A chat-templated prompt and where each message's content sits in it.

    Attributes:
        text: The rendered template.
        content_offsets: Character offset of each message's content inside ``text``.
    """

    text: str
    content_offsets: tuple[int, ...]

    def place(self, segments: Sequence[Segment], message: int = -1) -> list[Segment]:
        """Shift segments given relative to one message's content into ``text``."""
        offset = self.content_offsets[message]
        return [segment.shifted(offset) for segment in segments]


def render_chat(
    tokenizer: Any,
    messages: Sequence[Mapping[str, str]],
    *,
    add_generation_prompt: bool = True,
) -> ChatPrompt:
    """Render ``messages`` with the tokenizer's chat template, keeping content offsets.

    Raises:
        ValueError: The tokenizer has no chat template, or a message's content does not appear
            verbatim in the rendered text (a template that rewrites content).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "this tokenizer has no chat template; score the plain text with chat=False"
        )

    def render(contents: Sequence[str]) -> str:
        turns = [{**message, "content": c} for message, c in zip(messages, contents, strict=True)]
        rendered = tokenizer.apply_chat_template(
            turns, tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return str(rendered)

    contents = [message["content"] for message in messages]
    text = render(contents)
    # Render once with unique placeholders to learn where each content lands; this avoids
    # matching a content that also occurs in the template's own markup (e.g. "user").
    markers = [f"\ue000{index}\ue001" for index in range(len(messages))]
    skeleton = render(markers)
    offsets: list[int] = []
    pieces: list[str] = []
    cursor = shift = 0
    for marker, content in zip(markers, contents, strict=True):
        found = skeleton.find(marker, cursor)
        if found < 0:
            break
        pieces.append(skeleton[cursor:found] + content)
        offsets.append(found + shift)
        shift += len(content) - len(marker)
        cursor = found + len(marker)
    if len(offsets) == len(messages) and "".join(pieces) + skeleton[cursor:] == text:
        return ChatPrompt(text, tuple(offsets))
    raise ValueError(
        "the chat template rewrites message contents (e.g. strips whitespace), so segment "
        "offsets cannot be placed in the templated text; strip the contents before passing them"
    )
