"""Gradient methods: gradient x input, gradient L2 norm and integrated gradients.

All of them differentiate the summed log-probability of the answer span with respect to the
context's input embeddings; per-answer-token rows reuse the same forward pass.
"""

from __future__ import annotations

import numpy as np
import torch

from lucidtrace.probes.attribution.base import (
    AttributionInputs,
    MethodOutput,
    answer_logprobs,
    context_embeddings,
    input_gradients_only,
)

_RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def _gradients(
    inputs: AttributionInputs, embeds: torch.Tensor, per_token: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradient of the summed answer log-probability, and per answer token when asked.

    Returns ``(batch, L, hidden)`` and, with ``per_token``, ``(answer_len, batch, L, hidden)``.
    """
    embeds = embeds.requires_grad_(True)
    logprobs = answer_logprobs(inputs, embeds)
    if not per_token:
        (grad,) = torch.autograd.grad(logprobs.sum(), embeds)
        return grad, None
    rows = []
    for index in range(logprobs.shape[1]):
        last = index == logprobs.shape[1] - 1
        (grad,) = torch.autograd.grad(logprobs[:, index].sum(), embeds, retain_graph=not last)
        rows.append(grad)
    per = torch.stack(rows)
    return per.sum(0), per


class GradientXInput:
    """Gradient x input: one forward and one backward pass (the default method).

    A token's score is ``g . x``: the gradient of the summed answer log-probability with respect
    to the token's input embedding ``x``, dotted with ``x`` (signed; equal to Captum's
    ``InputXGradient`` summed over the hidden dimension). ``g . x`` is the derivative along the
    embedding's own direction, i.e. the effect of scaling it. In models that add position
    embeddings to token embeddings before the first normalisation (GPT-2) that scale reaches
    every block; in pre-RMSNorm models with rotary positions (the Llama family) each block
    normalises away the embedding's scale, so the score only sees the embedding's share of the
    residual stream: what the first block reads from a token adds nothing to its score.
    Check a model with the sanity gates (planted cue, randomisation, ERASER) before trusting
    the ranking.
    """

    name = "gradient_x_input"
    description = "signed gradient x input embedding, summed over the hidden dimension"

    def compute(self, inputs: AttributionInputs, *, per_token: bool) -> MethodOutput:
        """Score the context tokens."""
        with input_gradients_only(inputs.lm.model):
            embeds = context_embeddings(inputs)
            grad, per = _gradients(inputs, embeds.clone(), per_token)
        scores = (grad * embeds).sum(-1)[0].detach()
        rows = None if per is None else (per * embeds).sum(-1)[:, 0].detach()
        return MethodOutput(scores, rows)


class GradientL2:
    """L2 norm of the gradient per token: unsigned, one forward and one backward pass."""

    name = "gradient_l2"
    description = "L2 norm over the hidden dimension of the input-embedding gradient"

    def compute(self, inputs: AttributionInputs, *, per_token: bool) -> MethodOutput:
        """Score the context tokens."""
        with input_gradients_only(inputs.lm.model):
            grad, per = _gradients(inputs, context_embeddings(inputs).clone(), per_token)
        scores = grad.norm(dim=-1)[0].detach()
        rows = None if per is None else per.norm(dim=-1)[:, 0].detach()
        return MethodOutput(scores, rows)


def integration_rule(rule: str, n_steps: int) -> tuple[list[float], list[float]]:
    """``(alphas, weights)`` of a quadrature rule on [0, 1], defined as in Captum."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()
    if rule not in _RULES:
        raise ValueError(f"unknown integration rule {rule!r}; use one of {list(_RULES)}")
    if n_steps < 2:
        raise ValueError("Riemann rules need n_steps >= 2")
    steps = [1.0 / n_steps] * n_steps
    if rule == "riemann_trapezoid":
        # Captum's trapezoid: nodes at both ends with halved weights, each step still 1/n.
        steps[0] /= 2
        steps[-1] /= 2
        return np.linspace(0.0, 1.0, n_steps).tolist(), steps
    first = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[rule]
    return [(first + k) / n_steps for k in range(n_steps)], steps


class IntegratedGradients:
    """Integrated gradients from a baseline embedding, with the interpolation steps batched."""

    name = "integrated_gradients"
    description = "integrated gradients along a straight path from a baseline embedding"

    def compute(
        self,
        inputs: AttributionInputs,
        *,
        per_token: bool,
        n_steps: int = 32,
        rule: str = "gausslegendre",
        baseline: str = "zero",
        internal_batch_size: int = 16,
    ) -> MethodOutput:
        """Score the context tokens.

        Args:
            inputs: The encoded context and answer.
            per_token: Also return one row per answer token.
            n_steps: Interpolation steps.
            rule: ``"gausslegendre"`` (Captum's default) or ``"riemann_{left,right,middle,
                trapezoid}"``.
            baseline: ``"zero"`` (all-zero embeddings) or ``"pad"`` (the pad token's
                embedding at every context position).
            internal_batch_size: Interpolation steps run in one forward/backward pass.
        """
        alphas, weights = integration_rule(rule, n_steps)
        per_total = None
        with input_gradients_only(inputs.lm.model):
            embeds = context_embeddings(inputs)
            base = self._baseline(inputs, embeds, baseline)
            delta = embeds - base
            total = torch.zeros_like(embeds)
            for begin in range(0, len(alphas), max(1, internal_batch_size)):
                chunk = slice(begin, begin + max(1, internal_batch_size))
                alpha = torch.tensor(alphas[chunk], dtype=embeds.dtype, device=embeds.device)
                weight = torch.tensor(weights[chunk], dtype=embeds.dtype, device=embeds.device)
                path = base + alpha.view(-1, 1, 1) * delta
                grad, per = _gradients(inputs, path, per_token)
                total += (grad * weight.view(-1, 1, 1)).sum(0, keepdim=True)
                if per is not None:
                    weighted = (per * weight.view(1, -1, 1, 1)).sum(1)
                    per_total = weighted if per_total is None else per_total + weighted
        scores = (total * delta).sum(-1)[0].detach()
        rows = None if per_total is None else (per_total * delta).sum(-1).detach()
        return MethodOutput(scores, rows)

    @staticmethod
    def _baseline(inputs: AttributionInputs, embeds: torch.Tensor, kind: str) -> torch.Tensor:
        if kind == "zero":
            return torch.zeros_like(embeds)
        if kind == "pad":
            pad = inputs.lm.tokenizer.pad_token_id
            if pad is None:
                raise ValueError("the tokenizer has no pad token; use baseline='zero'")
            table: torch.Tensor = inputs.lm.model.get_input_embeddings().weight  # type: ignore[assignment]
            return table[pad].detach().expand_as(embeds).clone()
        raise ValueError(f"unknown baseline {kind!r}; use 'zero' or 'pad'")
