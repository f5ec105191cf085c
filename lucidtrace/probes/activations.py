"""Capture residual-stream hidden states at chosen token positions, for every layer.

Layer index ``0`` is the token embeddings and index ``l`` (1..``num_layers``) is the output of
decoder layer ``l`` (the residual stream after that block, before any final norm). Forward hooks
on the embedding and decoder-layer modules collect only the requested positions, and are always
removed, also when the forward pass raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import torch
from torch import nn

from lucidtrace.probes.models import LoadedModel


class _StopForward(Exception):  # noqa: N818  (a control-flow signal, not an error)
    """Raised by the last needed hook so that layers above it are not computed."""


def decoder_layers(model: nn.Module, num_layers: int) -> nn.ModuleList:
    """Find the decoder-layer list of a causal LM (the ModuleList with one entry per layer).

    Raises:
        ValueError: No such list exists (the architecture is not a standard decoder stack).
    """
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == num_layers:
            return module
    raise ValueError(
        f"Could not find a list of {num_layers} decoder layers in {type(model).__name__}; "
        "activation capture supports standard Hugging Face decoder-only models."
    )


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
        layers: Hidden-state indices (0 = embeddings, ``num_layers`` = last block); all by default.
        batch_size: Texts per forward pass.
        add_special_tokens: Passed to the tokenizer (adds BOS where the tokenizer does).

    Returns:
        Float32 CPU tensor ``[len(texts), len(layers), hidden_size]``.

    Raises:
        IndexError: A position is outside its text's tokens.
    """
    count = len(texts)
    wanted = list(range(loaded.num_layers + 1)) if layers is None else list(layers)
    for layer in wanted:
        if not 0 <= layer <= loaded.num_layers:
            raise IndexError(f"layer {layer} is outside 0..{loaded.num_layers}")
    per_text = [positions] * count if isinstance(positions, int) else list(positions)
    if len(per_text) != count:
        raise ValueError(f"got {len(per_text)} positions for {count} texts")
    encoded = [
        loaded.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"] for text in texts
    ]
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
        _layer_hooks(loaded, wanted, rows, cols, captured),
        torch.no_grad(),
        suppress(_StopForward),
    ):
        # The base model skips the LM head, which costs more than a block at large vocabularies.
        loaded.model.base_model(
            input_ids=input_ids.to(loaded.device),
            attention_mask=mask.to(loaded.device),
            use_cache=False,
        )
    return torch.stack([captured[layer] for layer in wanted], dim=1)


@contextmanager
def _layer_hooks(
    loaded: LoadedModel,
    wanted: list[int],
    rows: torch.Tensor,
    cols: torch.Tensor,
    captured: dict[int, torch.Tensor],
) -> Iterator[None]:
    modules: list[nn.Module] = [
        loaded.model.get_input_embeddings(),
        *decoder_layers(loaded.model, loaded.num_layers),
    ]
    last = max(wanted)
    handles = []

    def make_hook(layer: int) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            states = output[0] if isinstance(output, tuple) else output
            captured[layer] = states[rows, cols].detach().to("cpu", torch.float32)
            if layer == last:
                raise _StopForward

        return hook

    try:
        for layer in sorted(set(wanted)):
            handles.append(modules[layer].register_forward_hook(make_hook(layer)))
        yield
    finally:
        for handle in handles:
            handle.remove()
