"""Hidden-state capture on a tiny model: shapes, positions, padding invariance, hook hygiene."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from lucidtrace.probes import LoadedModel, capture_activations, wrap_model  # noqa: E402
from lucidtrace.probes.activations import decoder_layers  # noqa: E402
from tests.model.tiny import make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.model

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "home"]
TEXTS = [
    "the cat sat",
    "the dog ran far far away from the mat and home",
    "a mat",
    "the cat sat on a mat",
]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available"),
        ],
    ),
]


def tiny(device: str = "cpu", layers: int = 3) -> LoadedModel:
    tokenizer = make_tokenizer(WORDS)
    loaded = wrap_model(make_model(tokenizer, layers=layers, seed=5), tokenizer, name="tiny")
    loaded.model.to(device)  # type: ignore[arg-type]  # transformers types `to` too narrowly
    return loaded


def reference_states(loaded: LoadedModel, text: str) -> list[Any]:
    """Hidden states from transformers' own output_hidden_states, for one unpadded text."""
    batch = loaded.tokenizer(text, return_tensors="pt").to(loaded.device)
    with torch.no_grad():
        out = loaded.model(**batch, output_hidden_states=True)
    return [state[0].cpu() for state in out.hidden_states]


def hook_count(loaded: LoadedModel) -> int:
    return sum(len(m._forward_hooks) for m in loaded.model.modules())


@pytest.mark.parametrize("device", DEVICES)
def test_matches_transformers_hidden_states(device: str) -> None:
    loaded = tiny(device)
    captured = capture_activations(loaded, TEXTS, positions=-1)
    assert captured.shape == (len(TEXTS), loaded.num_layers + 1, 64)
    assert captured.device.type == "cpu"
    assert captured.dtype == torch.float32
    final_norm = loaded.model.model.norm
    for row, text in enumerate(TEXTS):
        states = reference_states(loaded, text)
        for layer in range(loaded.num_layers):
            torch.testing.assert_close(
                captured[row, layer], states[layer][-1], atol=1e-5, rtol=1e-5
            )
        # transformers reports the last layer after the final norm; capture keeps the raw stream.
        with torch.no_grad():
            normed = final_norm(captured[row, -1].to(device)).cpu()
        torch.testing.assert_close(normed, states[-1][-1], atol=1e-5, rtol=1e-5)


def test_padding_invariance() -> None:
    loaded = tiny()
    together = capture_activations(loaded, TEXTS, positions=[1, 3, 0, -2], batch_size=4)
    for row, (text, pos) in enumerate(zip(TEXTS, [1, 3, 0, -2], strict=True)):
        alone = capture_activations(loaded, [text], positions=pos)
        torch.testing.assert_close(together[row], alone[0], atol=1e-5, rtol=1e-5)


def test_batch_size_and_order_do_not_change_results() -> None:
    loaded = tiny()
    big = capture_activations(loaded, TEXTS, batch_size=16)
    small = capture_activations(loaded, TEXTS, batch_size=1)
    reversed_rows = capture_activations(loaded, TEXTS[::-1], batch_size=3)
    torch.testing.assert_close(big, small, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(big, reversed_rows.flip(0), atol=1e-5, rtol=1e-5)


def test_chosen_layers_and_embedding_layer() -> None:
    loaded = tiny()
    full = capture_activations(loaded, TEXTS, positions=0)
    chosen = capture_activations(loaded, TEXTS, positions=0, layers=[2, 0])
    assert chosen.shape == (len(TEXTS), 2, 64)
    torch.testing.assert_close(chosen[:, 0], full[:, 2])
    torch.testing.assert_close(chosen[:, 1], full[:, 0])
    # Position 0 is <bos> in every text: its embedding row, whatever follows it.
    embeddings: Any = loaded.model.get_input_embeddings()
    bos = embeddings.weight[loaded.tokenizer.bos_token_id]
    torch.testing.assert_close(full[:, 0], bos.detach().expand(len(TEXTS), -1))


def test_bad_positions_and_layers_raise() -> None:
    loaded = tiny()
    with pytest.raises(IndexError, match="position 4 is outside text 0"):
        capture_activations(loaded, ["the cat sat"], positions=4)
    with pytest.raises(IndexError, match="position -5"):
        capture_activations(loaded, ["the cat sat"], positions=-5)
    with pytest.raises(IndexError, match="layer 9"):
        capture_activations(loaded, ["the cat"], layers=[9])
    with pytest.raises(ValueError, match="2 positions for 1 texts"):
        capture_activations(loaded, ["the cat"], positions=[0, 1])


def test_hooks_are_removed_after_success_and_after_an_error() -> None:
    loaded = tiny()
    before = hook_count(loaded)
    capture_activations(loaded, TEXTS)
    capture_activations(loaded, TEXTS, layers=[1])  # stops early, above layer 1
    assert hook_count(loaded) == before

    def explode(*_args: object) -> None:
        raise RuntimeError("boom inside the forward pass")

    layer: Any = decoder_layers(loaded.model, loaded.num_layers)[1]
    handle = layer.register_forward_hook(explode)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            capture_activations(loaded, TEXTS)
        assert hook_count(loaded) == before + 1  # only the test's own hook is left
    finally:
        handle.remove()
    assert hook_count(loaded) == before
    # The model still works normally afterwards.
    assert capture_activations(loaded, TEXTS[:1]).shape == (1, loaded.num_layers + 1, 64)
