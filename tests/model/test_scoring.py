"""Teacher-forced scoring equals a plain forward pass, with and without the prefix cache."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lucidtrace.probes import wrap_model  # noqa: E402
from lucidtrace.probes.scoring import (  # noqa: E402
    encode_context,
    encode_continuation,
    score,
    score_many,
    score_truncations,
)
from tests.model.tiny import make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.model

WORDS = [f"w{index}" for index in range(40)]


@pytest.fixture(scope="module")
def lm():
    tokenizer = make_tokenizer(WORDS)
    return wrap_model(make_model(tokenizer, seed=5), tokenizer, name="tiny")


def _reference(lm, context: str, continuation: str, *, chat: bool = False) -> list[float]:
    """Log-probabilities from the full logits of one plain forward pass."""
    encoded = encode_context(lm.tokenizer, context, chat=chat)
    targets = encode_continuation(lm.tokenizer, continuation)
    ids = torch.tensor([[*encoded.ids, *targets]])
    with torch.no_grad():
        logprobs = lm.model(ids).logits.log_softmax(-1)[0]
    start = len(encoded.ids) - 1
    return [float(logprobs[start + j, token]) for j, token in enumerate(targets)]


@pytest.mark.parametrize("chat", [False, True])
def test_score_matches_a_plain_forward(lm, chat) -> None:
    result = score(lm, "w1 w2 w3 w4", " w5 w6 w7", chat=chat)
    assert result.tokens == ("w5", "w6", "w7")
    assert result.logprobs == pytest.approx(_reference(lm, "w1 w2 w3 w4", " w5 w6 w7", chat=chat))
    assert result.total == pytest.approx(sum(result.logprobs))


def test_lm_head_runs_only_at_target_positions(lm) -> None:
    seen = []
    handle = lm.model.get_output_embeddings().register_forward_hook(
        lambda _module, args, _out: seen.append(args[0].shape[:-1].numel())
    )
    try:
        score(lm, " ".join(WORDS[:30]), " w31 w32")
    finally:
        handle.remove()
    assert seen == [2]


def test_score_returns_hidden_states_of_chosen_layers_and_positions(lm) -> None:
    # Layer 1 of this 2-layer model: HF reports the last layer after the final norm, while
    # score() reads it before (tests/model/test_layer_convention.py covers the last layer).
    result = score(lm, "w1 w2 w3", " w4", hidden_layers=[0, 1], hidden_positions=[1, -1])
    w4 = lm.tokenizer.convert_tokens_to_ids("w4")
    ids = torch.tensor([[*encode_context(lm.tokenizer, "w1 w2 w3").ids, w4]])
    with torch.no_grad():
        states = lm.model(ids, output_hidden_states=True).hidden_states
    assert result.hidden_states is not None
    assert result.hidden_states.shape == (2, 2, 64)
    assert torch.allclose(result.hidden_states[1, 0], states[1][0, 1], atol=1e-5)
    assert torch.allclose(result.hidden_states[0, 1], states[0][0, -1], atol=1e-5)


@pytest.mark.parametrize("chat", [False, True])
def test_score_many_with_cached_prefix_matches_separate_passes(lm, chat) -> None:
    continuations = [" w9", " w10 w11 w12", " w13 w14", " w15 w16 w17 w18 w19"]
    results = score_many(lm, "w1 w2 w3 w4 w5", continuations, chat=chat, batch_size=3)
    for result, continuation in zip(results, continuations, strict=True):
        expected = _reference(lm, "w1 w2 w3 w4 w5", continuation, chat=chat)
        assert result.logprobs == pytest.approx(expected, abs=1e-5)


def test_score_truncations_matches_scoring_each_truncated_text(lm) -> None:
    text = "w20 w21 w22 w23 w24 w25"
    cuts = [0, 3, 5, len(text) - 4, len(text)]  # 5 falls inside "w21": snapped back to "w20"
    results = score_truncations(lm, "w1 w2", text, cuts, "w30 w31", batch_size=2)
    for result, cut in zip(results, cuts, strict=True):
        kept = " ".join(word for word in text[:cut].split() if len(word) == 3)
        expected = _reference(lm, f"w1 w2 {kept}".strip(), "w30 w31")
        assert result.logprobs == pytest.approx(expected, abs=1e-5)


def test_empty_continuation_and_bad_cut_say_what_to_do(lm) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        score(lm, "w1", "")
    with pytest.raises(ValueError, match="outside the text"):
        score_truncations(lm, "w1", "w2 w3", [9], "w4")
