"""One layer-index convention for score(hidden_layers=...) and capture_activations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lucidtrace.probes import capture_activations, score, wrap_model  # noqa: E402
from tests.model.tiny import make_gpt2_model, make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.model


@pytest.mark.parametrize("make", [make_model, make_gpt2_model], ids=["llama", "gpt2"])
def test_score_and_capture_follow_one_convention(make: Callable[..., Any]) -> None:
    torch.set_num_threads(1)
    tokenizer = make_tokenizer(["a", "b", "c", "d"])
    lm = wrap_model(make(tokenizer, seed=2), tokenizer, name="tiny")
    layers = list(range(lm.num_layers + 1))
    context, answer = "a b c d a", " b"
    scored = score(lm, context, answer, hidden_layers=layers)
    assert scored.hidden_states is not None
    captured = capture_activations(lm, [context], positions=-1, layers=layers)
    torch.testing.assert_close(scored.hidden_states[:, 0], captured[0], atol=1e-5, rtol=1e-5)

    ids = torch.tensor([tokenizer(context)["input_ids"]])
    with torch.no_grad():
        hf = lm.model(ids, output_hidden_states=True).hidden_states
        embeddings = lm.model.get_input_embeddings()(ids)
        if hasattr(lm.model, "transformer"):  # GPT-2: learned positions are part of layer 0
            embeddings = embeddings + lm.model.transformer.wpe(torch.arange(ids.shape[1]))
    # Layer 0: the input of the first block, positions included.
    torch.testing.assert_close(captured[0, 0], embeddings[0, -1], atol=1e-5, rtol=1e-5)
    # Middle layers: the residual stream, as HF reports it.
    for layer in range(1, lm.num_layers):
        torch.testing.assert_close(captured[0, layer], hf[layer][0, -1], atol=1e-5, rtol=1e-5)
    # Last layer: before the final norm, unlike HF's last hidden state.
    assert not torch.allclose(captured[0, -1], hf[-1][0, -1], atol=1e-3)
