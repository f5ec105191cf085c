"""Each gradient and perturbation method equals Captum's method on the same model and input."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

captum_attr = pytest.importorskip("captum.attr")

from lucidtrace.probes import wrap_model  # noqa: E402
from lucidtrace.probes.attribution import attribute  # noqa: E402
from lucidtrace.probes.attribution.base import (  # noqa: E402
    AttributionInputs,
    answer_logprobs,
    context_embeddings,
)
from lucidtrace.probes.models import LoadedModel  # noqa: E402
from lucidtrace.probes.scoring import encode_context, encode_continuation  # noqa: E402
from tests.model.tiny import make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.model

WORDS = [f"w{index}" for index in range(30)]
CONTEXT = "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10"
# The leading space keeps the word boundary when context and answer are written together.
ANSWER = " w11 w12 w13"
SEGMENTS = {"first": (0, 8), "second": (9, 17), "third": (18, 26)}

Forward = Callable[..., torch.Tensor]
Setup = tuple[Forward, torch.Tensor, int]  # forward, context embeddings, answer length


@pytest.fixture(scope="module")
def lm() -> LoadedModel:
    tokenizer = make_tokenizer(WORDS)
    # float64 keeps both implementations' rounding far below the 1e-4 tolerance.
    model = make_model(tokenizer, seed=3).double()
    return wrap_model(model, tokenizer, name="tiny64")


@pytest.fixture(scope="module")
def captum_setup(lm: LoadedModel) -> Setup:
    encoded = encode_context(lm.tokenizer, CONTEXT)
    answer = encode_continuation(lm.tokenizer, ANSWER)
    inputs = AttributionInputs(lm, torch.tensor([[*encoded.ids, *answer]]), len(encoded.ids))
    embeds = context_embeddings(inputs)

    def forward(context_embeds: torch.Tensor, token: int | None = None) -> torch.Tensor:
        logprobs = answer_logprobs(inputs, context_embeds)
        return logprobs.sum(-1) if token is None else logprobs[:, token]

    return forward, embeds, len(answer)


def _close(ours: Any, theirs: Any) -> None:
    ours = torch.as_tensor(ours, dtype=torch.float64)
    theirs = torch.as_tensor(theirs).detach().to(torch.float64).reshape(ours.shape)
    scale = theirs.abs().max()
    assert scale > 0
    assert float((ours - theirs).abs().max() / scale) <= 1e-4


def test_gradient_x_input_equals_captum_input_x_gradient(
    lm: LoadedModel, captum_setup: Setup
) -> None:
    forward, embeds, answer_len = captum_setup
    theirs = captum_attr.InputXGradient(forward).attribute(embeds.clone().requires_grad_())
    result = attribute(lm, CONTEXT, ANSWER, per_token=True)
    _close(result.scores, theirs.sum(-1))
    assert result.answer_token_scores is not None
    for token in range(answer_len):
        row = captum_attr.InputXGradient(lambda e, t=token: forward(e, t)).attribute(
            embeds.clone().requires_grad_()
        )
        _close(result.answer_token_scores[token], row.sum(-1))


def test_gradient_l2_equals_l2_of_captum_saliency(lm: LoadedModel, captum_setup: Setup) -> None:
    forward, embeds, _ = captum_setup
    grads = captum_attr.Saliency(forward).attribute(embeds.clone().requires_grad_(), abs=False)
    _close(attribute(lm, CONTEXT, ANSWER, method="gradient_l2").scores, grads.norm(dim=-1))


@pytest.mark.parametrize(
    ("rule", "captum_method"),
    [("gausslegendre", "gausslegendre"), ("riemann_trapezoid", "riemann_trapezoid")],
)
def test_integrated_gradients_equals_captum(
    lm: LoadedModel, captum_setup: Setup, rule: str, captum_method: str
) -> None:
    forward, embeds, _ = captum_setup
    theirs = captum_attr.IntegratedGradients(forward).attribute(
        embeds.clone(), baselines=torch.zeros_like(embeds), n_steps=20, method=captum_method
    )
    ours = attribute(
        lm,
        CONTEXT,
        ANSWER,
        method="integrated_gradients",
        n_steps=20,
        rule=rule,
        internal_batch_size=7,  # steps split unevenly over batches
    )
    _close(ours.scores, theirs.sum(-1))


def test_integrated_gradients_pad_baseline_equals_captum(
    lm: LoadedModel, captum_setup: Setup
) -> None:
    forward, embeds, _ = captum_setup
    pad = _pad_embedding(lm)
    baseline = pad.expand_as(embeds).clone()
    theirs = captum_attr.IntegratedGradients(forward).attribute(
        embeds.clone(), baselines=baseline, n_steps=16
    )
    ours = attribute(lm, CONTEXT, ANSWER, method="integrated_gradients", n_steps=16, baseline="pad")
    _close(ours.scores, theirs.sum(-1))


def _pad_embedding(lm: LoadedModel) -> torch.Tensor:
    table: torch.Tensor = lm.model.get_input_embeddings().weight  # type: ignore[assignment]
    return table[lm.tokenizer.pad_token_id].detach()


def _ablation(
    forward: Forward, embeds: torch.Tensor, lm: LoadedModel, mask: Sequence[int]
) -> torch.Tensor:
    pad = _pad_embedding(lm)
    feature_mask = torch.as_tensor(mask).view(1, -1, 1).expand_as(embeds)
    attributions: torch.Tensor = captum_attr.FeatureAblation(forward).attribute(
        embeds.clone(), baselines=pad.expand_as(embeds).clone(), feature_mask=feature_mask
    )[0, :, 0]
    return attributions


def test_segment_occlusion_equals_captum_feature_ablation(
    lm: LoadedModel, captum_setup: Setup
) -> None:
    forward, embeds, _ = captum_setup
    ours = attribute(lm, CONTEXT, ANSWER, method="occlusion", segments=SEGMENTS, batch_size=2)
    mask = [0] * embeds.shape[1]  # group 0: tokens outside every segment
    for group, segment in enumerate(ours.segments, start=1):
        for index in range(segment.token_start, segment.token_end):
            mask[index] = group
    theirs = _ablation(forward, embeds, lm, mask)
    for segment in ours.segments:
        # Captum gives every token of a group the group's whole effect; we spread it.
        _close([segment.total], [theirs[segment.token_start]])
        width = segment.token_end - segment.token_start
        _close(
            ours.scores[segment.token_start : segment.token_end],
            theirs[segment.token_start : segment.token_end] / width,
        )


def test_token_occlusion_equals_captum_feature_ablation(
    lm: LoadedModel, captum_setup: Setup
) -> None:
    forward, embeds, answer_len = captum_setup
    ours = attribute(lm, CONTEXT, ANSWER, method="occlusion", per_token=True, batch_size=4)
    _close(ours.scores, _ablation(forward, embeds, lm, list(range(embeds.shape[1]))))
    first_token = _ablation(lambda e: forward(e, 0), embeds, lm, list(range(embeds.shape[1])))
    assert ours.answer_token_scores is not None
    _close(ours.answer_token_scores[0], first_token)
    assert len(ours.answer_token_scores) == answer_len


def test_gradient_x_input_equals_captum_llm_gradient_attribution(lm: LoadedModel) -> None:
    # Captum as its documentation shows for LLMs, on the plain model: one forward and backward
    # per answer token; the rows' sum is gradient x input of the summed answer log-probability.
    captum = captum_attr.LLMGradientAttribution(
        captum_attr.LayerGradientXActivation(lm.model, lm.model.get_input_embeddings()),
        lm.tokenizer,
    )
    text_input = captum_attr.TextTokenInput(CONTEXT, lm.tokenizer)
    theirs = captum.attribute(text_input, target=ANSWER)
    ours = attribute(lm, CONTEXT, ANSWER, per_token=True)
    assert list(ours.tokens) == list(text_input.values)
    _close(ours.scores, theirs.seq_attr)
    _close(ours.answer_token_scores, theirs.token_attr)


@pytest.mark.parametrize("method", ["gradient_x_input", "gradient_l2", "integrated_gradients"])
def test_gradient_methods_compute_no_parameter_gradients(lm: LoadedModel, method: str) -> None:
    seen = []

    def record(module: torch.nn.Module, args: object, output: object) -> None:
        seen.append(any(param.requires_grad for param in lm.model.parameters()))

    handle = lm.model.get_input_embeddings().register_forward_hook(record)
    options: dict[str, Any] = {"n_steps": 4} if method == "integrated_gradients" else {}
    try:
        attribute(lm, CONTEXT, ANSWER, method=method, **options)
    finally:
        handle.remove()
    assert seen
    assert not any(seen)  # parameters are frozen while the method runs
    assert all(param.requires_grad for param in lm.model.parameters())  # and restored after
    assert all(param.grad is None for param in lm.model.parameters())
