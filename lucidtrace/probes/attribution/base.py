"""What every attribution method receives and returns, and the helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from lucidtrace.probes.scoring import decoder_of, token_logprobs

if TYPE_CHECKING:
    from lucidtrace.probes.models import LoadedModel
    from lucidtrace.probes.segments import TokenSpan


@dataclass(frozen=True)
class AttributionInputs:
    """An encoded context and answer, ready for a method.

    Attributes:
        lm: The model.
        input_ids: ``(1, context_len + answer_len)`` ids on the model's device.
        context_len: Number of context tokens (the attributed positions).
        spans: Segments mapped to token ranges (empty when none were given).
    """

    lm: LoadedModel
    input_ids: torch.Tensor
    context_len: int
    spans: tuple[TokenSpan, ...] = ()

    @property
    def answer_ids(self) -> torch.Tensor:
        """``(answer_len,)`` answer token ids."""
        return self.input_ids[0, self.context_len :]


@dataclass(frozen=True)
class MethodOutput:
    """Raw scores from a method.

    Attributes:
        scores: ``(context_len,)`` scores for the whole answer span (signed or non-negative
            as the method defines; importance is the magnitude).
        per_token: ``(answer_len, context_len)`` scores per answer token, or ``None``.
    """

    scores: torch.Tensor
    per_token: torch.Tensor | None = None


class AttributionMethod(Protocol):
    """An attribution method: a name, a one-line description and a compute call.

    ``compute`` takes the method's own options as keyword arguments and must return context
    token scores for the summed log-probability of the answer span (and, when ``per_token`` is
    set, one row per answer token).
    """

    name: str
    description: str

    @property
    def compute(self) -> Callable[..., MethodOutput]:
        """``compute(inputs, *, per_token, **options)``; options are the method's own keywords."""
        ...


@contextmanager
def input_gradients_only(model: torch.nn.Module) -> Iterator[None]:
    """Enable autograd for inputs while the parameters need no gradient (restored on exit).

    Without this the forward would keep what is needed for weight gradients, which
    attribution never uses.
    """
    flags = [(param, param.requires_grad) for param in model.parameters()]
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)


def answer_logprobs(inputs: AttributionInputs, context_embeds: torch.Tensor) -> torch.Tensor:
    """Answer log-probabilities ``(batch, A)`` from context embeddings ``(batch, L, hidden)``.

    The answer's own embeddings are fixed; the LM head runs only at the positions that predict
    answer tokens.
    """
    model = inputs.lm.model
    batch = context_embeds.shape[0]
    answer = inputs.answer_ids
    answer_embeds = model.get_input_embeddings()(answer).unsqueeze(0)
    embeds = torch.cat([context_embeds, answer_embeds.expand(batch, -1, -1)], dim=1)
    hidden = decoder_of(model)(inputs_embeds=embeds).last_hidden_state
    start = inputs.context_len - 1
    predictors = hidden[:, start : start + len(answer)]
    return token_logprobs(model, predictors, answer.unsqueeze(0).expand(batch, -1))


def context_embeddings(inputs: AttributionInputs) -> torch.Tensor:
    """``(1, L, hidden)`` detached embeddings of the context tokens."""
    ids = inputs.input_ids[:, : inputs.context_len]
    return inputs.lm.model.get_input_embeddings()(ids).detach()
