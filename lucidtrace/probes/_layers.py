"""Hooks that read the residual stream between decoder layers.

Layer ``0`` is the input of the first decoder layer (token embeddings plus learned position
embeddings where the model has them); layer ``l`` is the output of decoder layer ``l``, before any
final norm. ``score`` and ``capture_activations`` both read hidden states through these hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from lucidtrace.probes.models import LoadedModel


class StopForward(Exception):  # noqa: N818  (a control-flow signal, not an error)
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


@contextmanager
def layer_hooks(
    loaded: LoadedModel,
    wanted: list[int],
    rows: torch.Tensor,
    cols: torch.Tensor,
    captured: dict[int, torch.Tensor],
    *,
    stop: bool = True,
) -> Iterator[None]:
    """Collect ``states[rows, cols]`` of each wanted layer while the hooks are installed.

    Layer ``0`` is the input of the first decoder layer (token embeddings plus learned position
    embeddings where the model has them); layer ``l`` is the output of decoder layer ``l``,
    before any final norm. With ``stop`` the forward pass ends after the last wanted layer.
    """
    blocks = decoder_layers(loaded.model, loaded.num_layers)
    last = max(wanted)
    handles = []

    def keep(layer: int, states: torch.Tensor) -> None:
        captured[layer] = states[rows, cols].detach().to("cpu", torch.float32)
        if stop and layer == last:
            raise StopForward

    def make_pre_hook() -> Any:
        def hook(_module: nn.Module, args: Any, kwargs: Any) -> None:
            keep(0, args[0] if args else kwargs["hidden_states"])

        return hook

    def make_hook(layer: int) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            keep(layer, output[0] if isinstance(output, tuple) else output)

        return hook

    try:
        for layer in sorted(set(wanted)):
            if layer == 0:
                handles.append(
                    blocks[0].register_forward_pre_hook(make_pre_hook(), with_kwargs=True)
                )
            else:
                handles.append(blocks[layer - 1].register_forward_hook(make_hook(layer)))
        yield
    finally:
        for handle in handles:
            handle.remove()
