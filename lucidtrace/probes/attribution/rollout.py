"""Attention rollout (Abnar & Zuidema 2020)."""

from __future__ import annotations

import torch

from lucidtrace.probes.attribution.base import AttributionInputs, MethodOutput
from lucidtrace.probes.scoring import decoder_of


class AttentionRollout:
    """Attention rollout: head-averaged attention plus identity, multiplied through the layers.

    Each layer's attention ``A`` (averaged over heads) becomes ``(1 - r)·A + r·I`` with rows
    re-normalised; the product over layers gives how much each position draws on each input
    token. A context token's score is the rolled-out attention it receives from the positions
    that predict the answer tokens. The model runs with eager attention for this call only.
    """

    name = "attention_rollout"
    description = "attention rollout from the answer-predicting positions (Abnar & Zuidema)"

    def compute(
        self, inputs: AttributionInputs, *, per_token: bool, residual: float = 0.5
    ) -> MethodOutput:
        """Score the context tokens.

        Args:
            inputs: The encoded context and answer.
            per_token: Also return one row per answer token.
            residual: Weight ``r`` of the identity added to each layer's attention.
        """
        if not 0.0 <= residual <= 1.0:
            raise ValueError("residual must be within [0, 1]")
        model = inputs.lm.model
        previous = model.config._attn_implementation
        model.set_attn_implementation("eager")
        try:
            with torch.no_grad():
                out = decoder_of(model)(input_ids=inputs.input_ids, output_attentions=True)
        finally:
            model.set_attn_implementation(previous)
        size = inputs.input_ids.shape[1]
        identity = torch.eye(size, device=inputs.input_ids.device)
        rollout = identity
        for attention in out.attentions:
            mixed = (1 - residual) * attention[0].float().mean(0) + residual * identity
            mixed = mixed / mixed.sum(-1, keepdim=True)
            rollout = mixed @ rollout
        start = inputs.context_len - 1
        answer_len = size - inputs.context_len
        matrix = rollout[start : start + answer_len, : inputs.context_len]
        return MethodOutput(matrix.sum(0), matrix if per_token else None)
