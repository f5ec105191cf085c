"""Token attributions behind one registry.

Every method scores the context tokens for the summed log-probability of a fixed answer and
returns an :class:`AttributionResult`. Built-in methods are registered explicitly below, through
the same :func:`register_attribution_method` that third-party methods use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from lucidtrace.probes.attribution.base import AttributionInputs, AttributionMethod, MethodOutput
from lucidtrace.probes.attribution.gradient import (
    GradientL2,
    GradientXInput,
    IntegratedGradients,
    integration_rule,
)
from lucidtrace.probes.attribution.occlusion import Occlusion
from lucidtrace.probes.attribution.result import AttributionResult, SegmentScore
from lucidtrace.probes.attribution.rollout import AttentionRollout
from lucidtrace.probes.scoring import (
    check_length,
    encode_context,
    encode_continuation,
    warn_on_boundary_merge,
)
from lucidtrace.probes.segments import Segment, check_segments, map_segments

if TYPE_CHECKING:
    from lucidtrace.probes.models import LoadedModel

DEFAULT_METHOD = "gradient_x_input"

_REGISTRY: dict[str, AttributionMethod] = {}


def register_attribution_method(
    method: AttributionMethod, *, replace: bool = False
) -> AttributionMethod:
    """Register a method under its ``name``; returns it (usable as a class-instance decorator).

    Raises:
        ValueError: The name is taken and ``replace`` is not set.
    """
    if method.name in _REGISTRY and not replace:
        raise ValueError(
            f"an attribution method named {method.name!r} is already registered; "
            "pass replace=True to override it"
        )
    _REGISTRY[method.name] = method
    return method


def get_attribution_method(name: str) -> AttributionMethod:
    """The registered method called ``name``.

    Raises:
        KeyError: No such method (the message lists the registered ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown attribution method {name!r}; registered: {list_attribution_methods()}"
        ) from None


def list_attribution_methods() -> list[str]:
    """Names of the registered methods, sorted."""
    return sorted(_REGISTRY)


def attribute(
    lm: LoadedModel,
    context: str,
    answer: str,
    *,
    method: str = DEFAULT_METHOD,
    segments: Sequence[Segment] | Mapping[str, tuple[int, int]] | None = None,
    per_token: bool = False,
    chat: bool = False,
    **options: Any,
) -> AttributionResult:
    """Attribute the log-probability of ``answer`` after ``context`` to the context tokens.

    Args:
        lm: The model (from :func:`lucidtrace.probes.load_model` or ``wrap_model``).
        context: The text before the answer (the user turn when ``chat`` is set).
        answer: The fixed answer text; its summed log-probability is the target.
        method: A registered method name (see :func:`list_attribution_methods`).
        segments: Named character ranges of ``context`` (``Segment`` objects or a mapping of
            name to ``(start, end)``); their totals are reported, and occlusion removes one
            segment at a time.
        per_token: Also return one row of scores per answer token.
        chat: Wrap ``context`` in the tokenizer's chat template with the generation prompt.
        **options: Method options (e.g. ``n_steps`` for integrated gradients).

    Returns:
        Scores per context token, per segment and optionally per answer token.
    """
    implementation = get_attribution_method(method)
    encoded = encode_context(lm.tokenizer, context, chat=chat)
    answer_ids = encode_continuation(lm.tokenizer, answer)
    check_length(lm.model, len(encoded.ids) + len(answer_ids))
    warn_on_boundary_merge(lm.tokenizer, encoded, answer, answer_ids)
    given = _as_segments(segments)
    # Segments index the caller's context, not the chat template around it.
    check_segments(given, len(context))
    placed = [segment.shifted(encoded.content_offset) for segment in given]
    spans = tuple(map_segments(encoded.text, encoded.offsets, placed))
    input_ids = torch.tensor([[*encoded.ids, *answer_ids]], device=lm.device)
    inputs = AttributionInputs(lm, input_ids, len(encoded.ids), spans)
    try:
        output = implementation.compute(inputs, per_token=per_token, **options)
    except TypeError as error:
        if "unexpected keyword" not in str(error):
            raise
        raise TypeError(f"attribution method {method!r}: {error}") from error
    scores = output.scores.detach().double().cpu()
    segment_scores = tuple(
        SegmentScore(
            segment.name,
            segment.start,
            segment.end,
            span.token_start,
            span.token_end,
            float(scores[span.token_start : span.token_end].sum()),
        )
        for segment, span in zip(given, spans, strict=True)
    )
    rows = None
    if per_token and output.per_token is not None:
        rows = tuple(tuple(row) for row in output.per_token.detach().double().cpu().tolist())
    tokenizer = lm.tokenizer
    return AttributionResult(
        method=implementation.name,
        target=f"sum of log p(answer tokens) for {answer!r} ({len(answer_ids)} tokens)",
        model=lm.identity,
        text=encoded.text,
        content_offset=encoded.content_offset,
        content_length=len(context),
        tokens=tuple(tokenizer.convert_ids_to_tokens(list(encoded.ids))),
        token_ids=encoded.ids,
        offsets=encoded.offsets,
        answer_tokens=tuple(tokenizer.convert_ids_to_tokens(list(answer_ids))),
        scores=tuple(scores.tolist()),
        answer_token_scores=rows,
        segments=segment_scores,
        options={"chat": chat, **options},
    )


def _as_segments(
    segments: Sequence[Segment] | Mapping[str, tuple[int, int]] | None,
) -> list[Segment]:
    if segments is None:
        return []
    if isinstance(segments, Mapping):
        return [Segment(name, int(start), int(end)) for name, (start, end) in segments.items()]
    return list(segments)


_BUILTINS: tuple[AttributionMethod, ...] = (
    GradientXInput(),
    GradientL2(),
    IntegratedGradients(),
    Occlusion(),
    AttentionRollout(),
)
for _method in _BUILTINS:
    register_attribution_method(_method)

__all__ = [
    "DEFAULT_METHOD",
    "AttentionRollout",
    "AttributionInputs",
    "AttributionMethod",
    "AttributionResult",
    "GradientL2",
    "GradientXInput",
    "IntegratedGradients",
    "MethodOutput",
    "Occlusion",
    "SegmentScore",
    "attribute",
    "get_attribution_method",
    "integration_rule",
    "list_attribution_methods",
    "register_attribution_method",
]
