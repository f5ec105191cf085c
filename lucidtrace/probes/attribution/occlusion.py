"""Occlusion (leave-one-out) over segments, or over single tokens when no segments are given."""

from __future__ import annotations

import torch

from lucidtrace.probes.attribution.base import AttributionInputs, MethodOutput
from lucidtrace.probes.scoring import PrefixCache


class Occlusion:
    """Replace one segment (or token) at a time with a baseline token; score the answer drop.

    A feature's score is ``log p(answer | context) - log p(answer | context with the feature
    replaced)``, spread evenly over the feature's tokens so that segment totals equal the drop.
    Perturbations are batched and share the KV cache of the unperturbed context up to the
    first replaced token, so early tokens are not recomputed.
    """

    name = "occlusion"
    description = "leave-one-out: drop in answer log-probability when a feature is replaced"

    def compute(
        self,
        inputs: AttributionInputs,
        *,
        per_token: bool,
        baseline_token: int | None = None,
        batch_size: int = 16,
    ) -> MethodOutput:
        """Score the context tokens.

        Args:
            inputs: The encoded context and answer.
            per_token: Also return one row per answer token.
            baseline_token: Token id that replaces occluded tokens; default: the pad token
                (else ``<unk>``, else end-of-sequence, else id 0).
            batch_size: Perturbed sequences per forward pass.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        replacement = self._replacement(inputs, baseline_token)
        length = inputs.context_len
        features = [span.tokens for span in inputs.spans] or [
            range(i, i + 1) for i in range(length)
        ]
        ids = inputs.input_ids[0].tolist()
        answer = ids[length:]
        cached = PrefixCache.build(inputs.lm.model, ids[:length])
        rows = []
        for tokens in features:
            perturbed = ids[tokens.start : length]
            for index in tokens:
                perturbed[index - tokens.start] = replacement
            rows.append((tokens.start, [*perturbed, *answer], len(answer)))
        with torch.no_grad():
            base = cached.continue_rows([(length, answer, len(answer))])[0]
            drops = []
            for begin in range(0, len(rows), batch_size):
                logprobs = cached.continue_rows(rows[begin : begin + batch_size])
                drops.append(base.unsqueeze(0) - logprobs)
        effect = torch.cat(drops)  # (features, answer_len)
        matrix = effect.new_zeros((len(answer), length))
        for feature, tokens in enumerate(features):
            matrix[:, tokens.start : tokens.stop] = effect[feature].unsqueeze(1) / len(tokens)
        return MethodOutput(matrix.sum(0), matrix if per_token else None)

    @staticmethod
    def _replacement(inputs: AttributionInputs, baseline_token: int | None) -> int:
        if baseline_token is not None:
            embedding = inputs.lm.model.get_input_embeddings()
            vocab = int(getattr(embedding, "num_embeddings", len(inputs.lm.tokenizer)))
            if not 0 <= int(baseline_token) < vocab:
                raise ValueError(
                    f"baseline_token {baseline_token} is outside the vocabulary 0..{vocab - 1}"
                )
            return int(baseline_token)
        tokenizer = inputs.lm.tokenizer
        for candidate in (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0
