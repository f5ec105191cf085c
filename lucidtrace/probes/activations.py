"""Capture residual-stream hidden states at chosen token positions, for every layer.

Layer index ``0`` is the input of the first decoder layer (the token embeddings, plus the learned
position embeddings of models such as GPT-2) and index ``l`` (1..``num_layers``) is the output of
decoder layer ``l`` (the residual stream after that block, before any final norm); ``score``'s
``hidden_layers`` follow the same convention. Hooks on the decoder-layer modules collect only the
requested positions, and are always removed, also when the forward pass raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress

import torch

from lucidtrace.probes._layers import StopForward, decoder_layers, layer_hooks
from lucidtrace.probes.models import LoadedModel
from lucidtrace.probes.scoring import check_length

__all__ = ["capture_activations", "decoder_layers"]


def capture_activations(
    loaded: LoadedModel,
    texts: Sequence[str],
    *,
    positions: int | Sequence[int] = -1,
    layers: Sequence[int] | None = None,
    batch_size: int = 16,
    add_special_tokens: bool = True,
) -> torch.Tensor:
    """Hidden states at one token position per text, for each requested layer.

    Texts are batched with right padding and an attention mask, so a text's activations do not
    depend on the other texts in its batch.

    Args:
        loaded: The model.
        texts: Input texts (already chat-templated where that matters).
        positions: Token index per text (or one for all); negative counts from the text's own
            last token, so ``-1`` is the last token of each text.
        layers: Layer indices (0 = input of the first block, ``l`` = output of block ``l``, before
            any final norm); all by default.
        batch_size: Texts per forward pass.
        add_special_tokens: Passed to the tokenizer (adds BOS where the tokenizer does).

    Returns:
        Float32 CPU tensor ``[len(texts), len(layers), hidden_size]``.

    Raises:
        IndexError: A position is outside its text's tokens.
    """
    count = len(texts)
    wanted = list(range(loaded.num_layers + 1)) if layers is None else [int(i) for i in layers]
    if not wanted:
        raise ValueError("layers is empty; pass None for all layers")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for layer in wanted:
        if not 0 <= layer <= loaded.num_layers:
            raise IndexError(f"layer {layer} is outside 0..{loaded.num_layers}")
    per_text = [positions] * count if isinstance(positions, int) else list(positions)
    if len(per_text) != count:
        raise ValueError(f"got {len(per_text)} positions for {count} texts")
    encoded = [
        loaded.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"] for text in texts
    ]
    for ids in encoded:
        check_length(loaded.model, len(ids), "text")
    resolved = [
        _resolve(pos, len(ids), i)
        for i, (pos, ids) in enumerate(zip(per_text, encoded, strict=True))
    ]
    hidden = int(loaded.model.config.get_text_config().hidden_size)
    result = torch.empty((count, len(wanted), hidden), dtype=torch.float32)
    # Similar lengths share a batch, which keeps padding (wasted compute) small.
    order = sorted(range(count), key=lambda i: len(encoded[i]))
    for start in range(0, count, batch_size):
        rows = order[start : start + batch_size]
        batch = _forward_batch(
            loaded, [encoded[i] for i in rows], [resolved[i] for i in rows], wanted
        )
        result[rows] = batch
    return result


def _resolve(position: int, length: int, index: int) -> int:
    resolved = position + length if position < 0 else position
    if not 0 <= resolved < length:
        raise IndexError(f"position {position} is outside text {index}'s {length} tokens")
    return resolved


def _forward_batch(
    loaded: LoadedModel, ids: list[list[int]], positions: list[int], wanted: list[int]
) -> torch.Tensor:
    tokenizer = loaded.tokenizer
    pad_id = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
    rows = torch.arange(len(ids), device=loaded.device)
    cols = torch.tensor(positions, device=loaded.device)
    captured: dict[int, torch.Tensor] = {}
    with (
        layer_hooks(loaded, wanted, rows, cols, captured),
        torch.no_grad(),
        suppress(StopForward),
    ):
        # The base model skips the LM head, which costs more than a block at large vocabularies.
        loaded.model.base_model(
            input_ids=input_ids.to(loaded.device),
            attention_mask=mask.to(loaded.device),
            use_cache=False,
        )
    return torch.stack([captured[layer] for layer in wanted], dim=1)
