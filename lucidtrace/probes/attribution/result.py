"""The one result type every attribution method returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lucidtrace.probes.models import ModelIdentity


@dataclass(frozen=True)
class SegmentScore:
    """Attribution summed over one segment.

    Attributes:
        name: Segment name.
        start: First character, relative to the context string the caller passed.
        end: One past the last character.
        token_start: First token index in :attr:`AttributionResult.tokens`.
        token_end: One past the last token index.
        total: Sum of the segment's token scores over the whole answer span.
    """

    name: str
    start: int
    end: int
    token_start: int
    token_end: int
    total: float


@dataclass(frozen=True)
class AttributionResult:
    """Scores of each context token for a fixed answer.

    Attributes:
        method: Registered name of the method that produced the scores.
        target: What was attributed (the summed log-probability of the answer span).
        model: Identity (name and weights hash) of the model.
        text: The context text as the model saw it (chat-templated when ``chat=True``).
        content_offset: Where the caller's context string starts inside :attr:`text`.
        tokens: Context tokens, special tokens included.
        token_ids: Their ids.
        offsets: ``(start, end)`` of each token in :attr:`text`.
        answer_tokens: The answer's tokens.
        scores: One score per context token for the whole answer span. Gradient x input,
            integrated gradients and occlusion are signed (positive: the token raises the
            answer's log-probability); gradient L2 and attention rollout are non-negative. A
            token's importance is the magnitude of its score, which :meth:`ranking` uses by
            default; segment totals are plain (signed) sums.
        answer_token_scores: With ``per_token=True``, one row of context-token scores per answer
            token, else ``None``.
        segments: Per-segment totals, in the order the segments were given.
        options: Method options used (e.g. ``n_steps``).
        content_length: Length of the caller's context string.
    """

    method: str
    target: str
    model: ModelIdentity
    text: str
    content_offset: int
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    answer_tokens: tuple[str, ...]
    scores: tuple[float, ...]
    answer_token_scores: tuple[tuple[float, ...], ...] | None = None
    segments: tuple[SegmentScore, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    content_length: int = 0

    @property
    def segment_totals(self) -> dict[str, float]:
        """Segment name to total score."""
        return {segment.name: segment.total for segment in self.segments}

    @property
    def content_tokens(self) -> range:
        """Indices of the tokens that lie inside the caller's context (not template or specials)."""
        end = self.content_offset + self.content_length
        inside = [
            index
            for index, (start, stop) in enumerate(self.offsets)
            if stop > start and self.content_offset <= start and stop <= end
        ]
        return range(inside[0], inside[-1] + 1) if inside else range(0)

    def ranking(self, *, absolute: bool = True) -> list[int]:
        """Context token indices, most important first.

        Args:
            absolute: Rank by ``abs(score)`` (importance, the default, as in the planted-cue
                protocol of Bastings et al. 2022); ``False`` ranks by signed score, most
                positive first.
        """
        keys = [abs(value) if absolute else value for value in self.scores]
        return sorted(range(len(keys)), key=lambda index: -keys[index])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the model identity as ``name@hash``)."""
        return {
            "method": self.method,
            "target": self.target,
            "model": str(self.model),
            "model_name": self.model.name,
            "weights_hash": self.model.weights_hash,
            "text": self.text,
            "content_offset": self.content_offset,
            "content_length": self.content_length,
            "tokens": list(self.tokens),
            "token_ids": list(self.token_ids),
            "offsets": [list(pair) for pair in self.offsets],
            "answer_tokens": list(self.answer_tokens),
            "scores": list(self.scores),
            "answer_token_scores": None
            if self.answer_token_scores is None
            else [list(row) for row in self.answer_token_scores],
            "segments": [_plain(vars(segment)) for segment in self.segments],
            "options": {str(key): _plain(value) for key, value in self.options.items()},
        }


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    return value
