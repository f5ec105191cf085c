"""Teacher-forced scoring of fixed continuations, with a KV cache for shared prefixes.

The LM head is applied only at the positions that predict scored tokens: the base model returns
hidden states and the head turns just those into log-probabilities, so no vocabulary-sized
logits are built for the context. Many continuations of one prefix (perturbed answers,
truncated chains of thought) reuse the prefix's KV cache and cost little more than one pass.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import DynamicCache

from lucidtrace.probes._layers import layer_hooks
from lucidtrace.probes.segments import render_chat

if TYPE_CHECKING:
    from lucidtrace.probes.models import LoadedModel


@dataclass(frozen=True)
class EncodedContext:
    """A context as the model sees it.

    Attributes:
        text: The tokenized text (the chat-templated prompt when ``chat=True``).
        ids: Token ids of ``text``, special tokens included.
        offsets: ``(start, end)`` character offsets of each token in ``text``.
        content_offset: Where the caller's context string starts inside ``text``.
        special_tokens: Whether the tokenizer added its special tokens (not for chat prompts,
            whose template writes them).
    """

    text: str
    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    content_offset: int
    special_tokens: bool = True


@dataclass(frozen=True)
class Score:
    """Log-probabilities of a continuation under teacher forcing.

    Attributes:
        token_ids: Continuation token ids.
        tokens: Continuation tokens as strings.
        logprobs: Natural-log probability of each continuation token.
        hidden_states: ``(layers, positions, hidden)`` float32 CPU states when requested, else
            ``None``.
    """

    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    logprobs: tuple[float, ...]
    hidden_states: torch.Tensor | None = None

    @property
    def total(self) -> float:
        """Summed log-probability of the whole continuation."""
        return float(sum(self.logprobs))


def encode_context(
    tokenizer: Any, context: str, *, chat: bool = False, system: str | None = None
) -> EncodedContext:
    """Tokenize a context, wrapped as a user turn of the chat template when ``chat`` is set."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("scoring needs a fast tokenizer (offset mappings); load one with use_fast")
    content_offset = 0
    text = context
    if chat:
        messages = [] if system is None else [{"role": "system", "content": system}]
        prompt = render_chat(tokenizer, [*messages, {"role": "user", "content": context}])
        text, content_offset = prompt.text, prompt.content_offsets[-1]
    encoded = tokenizer(text, add_special_tokens=not chat, return_offsets_mapping=True)
    if not encoded["input_ids"]:
        raise ValueError(
            "context is empty and the tokenizer adds no BOS token: there is no position to "
            "predict the first continuation token from; pass a non-empty context"
        )
    offsets = tuple((int(start), int(end)) for start, end in encoded["offset_mapping"])
    return EncodedContext(text, tuple(encoded["input_ids"]), offsets, content_offset, not chat)


def warn_on_boundary_merge(
    tokenizer: Any, encoded: EncodedContext, continuation: str, targets: Sequence[int]
) -> None:
    """Warn when the joint text tokenizes differently from context and continuation apart.

    Scoring feeds ``tokenize(context) + tokenize(continuation)``; when the tokenizer would merge
    or split tokens across the boundary of the joint text (``"...is "`` + ``"Paris"``), the
    scored sequence is not how the model would see the text written out.
    """
    special = (
        tuple(encoded.ids[:1]) == tuple(tokenizer("", add_special_tokens=True)["input_ids"][:1])
        and not encoded.content_offset
    )
    joint = tokenizer(encoded.text + continuation, add_special_tokens=special)["input_ids"]
    if list(joint) != [*encoded.ids, *targets]:
        warnings.warn(
            f"the context and the continuation {continuation!r} tokenize differently together "
            "than apart (the tokenizer merges or splits tokens at their boundary); the scored "
            "tokens are those of the continuation tokenized on its own. Move the boundary "
            "whitespace into the continuation (e.g. context 'is' + ' Paris') to avoid this.",
            UserWarning,
            stacklevel=3,
        )


def max_positions(model: Any) -> int | None:
    """The longest sequence the model's position scheme supports, when its config says."""
    config = model.config.get_text_config()
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_length(model: Any, length: int, what: str = "context and continuation") -> None:
    """Raise ``ValueError`` when ``length`` tokens exceed the model's maximum positions."""
    limit = max_positions(model)
    if limit is not None and length > limit:
        raise ValueError(
            f"{length} tokens of {what} exceed the model's maximum of {limit} positions; "
            "shorten the text"
        )


def encode_continuation(tokenizer: Any, continuation: str) -> tuple[int, ...]:
    """Token ids of a continuation, tokenized on its own without special tokens."""
    ids = tuple(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"the continuation {continuation!r} has no tokens; pass non-empty text")
    return ids


def decoder_of(model: Any) -> torch.nn.Module:
    """The base model (embeddings and blocks) of a causal LM, without its LM head."""
    return getattr(model, model.base_model_prefix)


def token_logprobs(model: Any, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of ``targets`` from final hidden states ``(..., hidden)``."""
    logits = model.get_output_embeddings()(hidden)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def score(
    lm: LoadedModel,
    context: str,
    continuation: str,
    *,
    chat: bool = False,
    hidden_layers: Sequence[int] | None = None,
    hidden_positions: Sequence[int] | None = None,
) -> Score:
    """Score ``continuation`` after ``context`` in one forward pass.

    Args:
        lm: The model.
        context: Text before the continuation (the user turn when ``chat`` is set).
        continuation: The scored text.
        chat: Wrap ``context`` in the chat template, with the generation prompt.
        hidden_layers: Layers whose hidden states to return, as in ``capture_activations``:
            0 = input of the first block (embeddings, with learned positions where the model
            has them), i = residual stream after block i, before any final norm.
        hidden_positions: Positions in the full sequence (context then continuation; negative
            counts from the end); default: the last context token.

    Returns:
        The continuation's per-token log-probabilities (and hidden states when asked).
    """
    encoded = encode_context(lm.tokenizer, context, chat=chat)
    targets = encode_continuation(lm.tokenizer, continuation)
    check_length(lm.model, len(encoded.ids) + len(targets))
    warn_on_boundary_merge(lm.tokenizer, encoded, continuation, targets)
    if hidden_layers is not None:
        hidden_layers = [int(layer) for layer in hidden_layers]
        if not hidden_layers:
            raise ValueError("hidden_layers is empty; pass None for no hidden states")
        for layer in hidden_layers:
            if not 0 <= layer <= lm.num_layers:
                raise ValueError(f"hidden layer {layer} is outside 0..{lm.num_layers}")
    ids = torch.tensor([*encoded.ids, *targets], device=lm.device).unsqueeze(0)
    captured: dict[int, torch.Tensor] = {}
    hooks: Any = contextlib.nullcontext()
    if hidden_layers is not None:
        positions = list(hidden_positions or [len(encoded.ids) - 1])
        for position in positions:
            if not -ids.shape[1] <= position < ids.shape[1]:
                raise ValueError(f"hidden position {position} is outside 0..{ids.shape[1] - 1}")
        rows = torch.zeros(len(positions), dtype=torch.long, device=lm.device)
        cols = torch.tensor(positions, dtype=torch.long, device=lm.device)
        hooks = layer_hooks(lm, hidden_layers, rows, cols, captured, stop=False)
    with torch.no_grad(), hooks:
        out = decoder_of(lm.model)(input_ids=ids)
        start = len(encoded.ids) - 1
        predictors = out.last_hidden_state[0, start : start + len(targets)]
        logprobs = token_logprobs(lm.model, predictors, ids[0, start + 1 :])
    hidden = None
    if hidden_layers is not None:
        hidden = torch.stack([captured[layer] for layer in hidden_layers])
    return _make_score(lm.tokenizer, targets, logprobs.tolist(), hidden)


def score_many(
    lm: LoadedModel,
    prefix: str,
    continuations: Sequence[str],
    *,
    chat: bool = False,
    batch_size: int = 8,
) -> list[Score]:
    """Score each continuation after one shared prefix, computing the prefix once.

    The prefix's KV cache is shared by every batch of continuations.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    encoded = encode_context(lm.tokenizer, prefix, chat=chat)
    rows = [encode_continuation(lm.tokenizer, text) for text in continuations]
    check_length(lm.model, len(encoded.ids) + max((len(row) for row in rows), default=0))
    for text, row in zip(continuations, rows, strict=True):
        warn_on_boundary_merge(lm.tokenizer, encoded, text, row)
    cached = PrefixCache.build(lm.model, encoded.ids)
    keep = len(encoded.ids)
    return _score_rows(lm, cached, [(keep, row, len(row)) for row in rows], batch_size)


def score_truncations(
    lm: LoadedModel,
    prefix: str,
    text: str,
    cuts: Sequence[int],
    suffix: str,
    *,
    chat: bool = False,
    batch_size: int = 8,
) -> list[Score]:
    """Score ``suffix`` after ``prefix`` + ``text[:cut]`` for each cut (early answering).

    ``text`` (e.g. a chain of thought) follows the prefix unscored and is encoded once; each cut
    (a character offset in ``text``) is snapped to the last token boundary at or before it, and
    every truncation reuses the KV cache of the full prefix + text.
    """
    encoded = encode_context(lm.tokenizer, prefix, chat=chat)
    body = lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    suffix_ids = encode_continuation(lm.tokenizer, suffix)
    ends = [int(end) for _, end in body["offset_mapping"]]
    rows = []
    for cut in cuts:
        if not 0 <= cut <= len(text):
            raise ValueError(f"cut {cut} is outside the text of {len(text)} characters")
        kept = sum(1 for end in ends if end <= cut)
        rows.append((len(encoded.ids) + kept, suffix_ids, len(suffix_ids)))
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    check_length(lm.model, len(encoded.ids) + len(body["input_ids"]) + len(suffix_ids))
    cached = PrefixCache.build(lm.model, (*encoded.ids, *body["input_ids"]))
    return _score_rows(lm, cached, rows, batch_size)


@dataclass
class PrefixCache:
    """KV cache and final hidden states of one prefix, shared by many continuations."""

    model: Any
    cache: DynamicCache
    hidden: torch.Tensor  # (prefix_len, hidden): final states, to predict a row's first token

    @classmethod
    def build(cls, model: Any, ids: Sequence[int]) -> PrefixCache:
        """Run the prefix once."""
        device = next(model.parameters()).device
        cache = DynamicCache(config=model.config)
        with torch.no_grad():
            out = decoder_of(model)(
                input_ids=torch.tensor([list(ids)], device=device),
                past_key_values=cache,
                use_cache=True,
            )
        return cls(model, cache, out.last_hidden_state[0])

    def expanded(self, keep: int, batch: int) -> DynamicCache:
        """A fresh cache holding the first ``keep`` prefix positions, repeated ``batch`` times."""
        layers = [
            (
                keys[:, :, :keep].expand(batch, -1, -1, -1),
                values[:, :, :keep].expand(batch, -1, -1, -1),
            )
            for keys, values, *_ in self.cache
        ]
        return DynamicCache(layers, config=self.model.config)

    def continue_rows(
        self, rows: Sequence[tuple[int, Sequence[int], int]], *, inputs_embeds: Any = None
    ) -> torch.Tensor:
        """Log-probabilities of the scored tail of each row, padded with zeros.

        Args:
            rows: ``(keep, ids, n_scored)``: the row sees prefix positions ``[0, keep)`` then
                ``ids``; the last ``n_scored`` of ``ids`` are scored.
            inputs_embeds: Optional embeddings for ``ids`` (``(rows, width, hidden)``), used
                instead of looking the ids up.

        Returns:
            ``(rows, max n_scored)`` log-probabilities.
        """
        device = self.hidden.device
        top = max(keep for keep, _, _ in rows)
        width = max(len(ids) for _, ids, _ in rows)
        input_ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        mask = torch.zeros((len(rows), top + width), dtype=torch.long, device=device)
        positions = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        for row, (keep, ids, _) in enumerate(rows):
            input_ids[row, : len(ids)] = torch.tensor(list(ids), device=device)
            mask[row, :keep] = 1
            mask[row, top : top + len(ids)] = 1
            positions[row] = torch.arange(keep, keep + width, device=device)
        kwargs: dict[str, Any] = {"attention_mask": mask, "position_ids": positions}
        if inputs_embeds is None:
            kwargs["input_ids"] = input_ids
        else:
            kwargs["inputs_embeds"] = inputs_embeds
        if top > 0:
            kwargs["past_key_values"] = self.expanded(top, len(rows))
        hidden = decoder_of(self.model)(**kwargs, use_cache=top > 0).last_hidden_state
        scored = max(n for _, _, n in rows)
        predictors = hidden.new_zeros((len(rows), scored, hidden.shape[-1]))
        targets = torch.zeros((len(rows), scored), dtype=torch.long, device=device)
        for row, (keep, ids, n) in enumerate(rows):
            first = len(ids) - n  # index in `ids` of the first scored token
            if first == 0:
                # The first scored token is predicted by the prefix's last position.
                states = torch.cat([self.hidden[keep - 1 : keep], hidden[row, : n - 1]])
            else:
                states = hidden[row, first - 1 : len(ids) - 1]
            predictors[row, :n] = states
            targets[row, :n] = input_ids[row, first : len(ids)]
        logprobs = token_logprobs(self.model, predictors, targets)
        lengths = torch.tensor([n for _, _, n in rows], device=device)
        valid = torch.arange(scored, device=device).unsqueeze(0) < lengths.unsqueeze(1)
        return torch.where(valid, logprobs, torch.zeros_like(logprobs))


def _score_rows(
    lm: LoadedModel,
    cached: PrefixCache,
    rows: Sequence[tuple[int, Sequence[int], int]],
    batch_size: int,
) -> list[Score]:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    scores: list[Score] = []
    with torch.no_grad():
        for begin in range(0, len(rows), batch_size):
            batch = rows[begin : begin + batch_size]
            logprobs = cached.continue_rows(batch).tolist()
            for (_, ids, n), values in zip(batch, logprobs, strict=True):
                scores.append(_make_score(lm.tokenizer, tuple(ids[-n:]), values[:n], None))
    return scores


def _make_score(
    tokenizer: Any, ids: Sequence[int], logprobs: Sequence[float], hidden: torch.Tensor | None
) -> Score:
    tokens = tuple(tokenizer.convert_ids_to_tokens(list(ids)))
    return Score(tuple(ids), tokens, tuple(float(x) for x in logprobs), hidden)
