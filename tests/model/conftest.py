"""Shared fixtures for model tests: a tiny transformer trained on a planted-cue task."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lucidtrace.probes.models import LoadedModel, wrap_model  # noqa: E402
from tests.model.tiny import make_gpt2_model, make_tokenizer, train_next_token  # noqa: E402

FILLER = [f"w{index}" for index in range(24)]
CUES = {"red": "yes", "blue": "no"}


@dataclass(frozen=True)
class CueItem:
    """Filler words with one cue word; the cue alone decides the answer."""

    text: str
    answer: str
    cue_word: int  # index of the cue among the words of `text`


def make_cue_items(count: int, seed: int) -> list[CueItem]:
    """Seven random filler words plus one cue word at a random position."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        words = [rng.choice(FILLER) for _ in range(7)]
        cue = rng.choice(sorted(CUES))
        position = rng.randrange(8)
        words.insert(position, cue)
        items.append(CueItem(" ".join(words), CUES[cue], position))
    return items


@pytest.fixture(scope="session")
def cue_model() -> LoadedModel:
    """A 2-layer GPT-2 trained (in about 2 s) to answer from the cue in a chat-templated prompt.

    Two choices make the gradient methods' planted-cue gate meaningful on this model:

    * GPT-2 adds absolute position embeddings to the token embeddings before its first
      LayerNorm. In a tiny Llama the first block sees each token only through RMSNorm, which is
      blind to the embedding's scale, and that scale is exactly what gradient x input measures
      (``g . x`` is the derivative along ``x``): scaling the cue's embedding by 1% there
      changes the answer log-probability by less than float32 resolution while removing the
      cue changes it by about 7 nats, so every token's score is near zero and the ranking is
      noise.
    * Label smoothing keeps the answer's probability near 0.9. Trained to saturation
      (p > 0.998) the log-probability's gradient weighs the few remaining logits of arbitrary
      vocabulary words, not the answer's own evidence.
    """
    torch.set_num_threads(min(2, torch.get_num_threads()))
    tokenizer = make_tokenizer([*FILLER, *CUES, *CUES.values()])
    model = make_gpt2_model(tokenizer, seed=0)
    # The same ids as the chat template renders: "<bos>user : ... <eos> assistant :".
    examples = [
        (f"user : {item.text} <eos> assistant :", item.answer)
        for item in make_cue_items(512, seed=0)
    ]
    accuracy = train_next_token(
        model, tokenizer, examples, steps=300, lr=3e-3, weight_decay=0.1, label_smoothing=0.1
    )
    assert accuracy == 1.0
    return wrap_model(model, tokenizer, name="tiny-cue")


@pytest.fixture(scope="session")
def held_out() -> list[CueItem]:
    """Items the cue model never saw."""
    return make_cue_items(40, seed=1)
