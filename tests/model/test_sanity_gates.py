"""Sanity gates on a model trained in the test: planted cue, cascading randomisation, ERASER.

The cue model answers from one planted cue word among random filler words, so the true cause of
each answer is known. Rankings are over the words of the user's text (the chat template's role
markers and special tokens are not candidate causes).
"""

from __future__ import annotations

import copy
import random

import pytest
import torch

from lucidtrace.probes import wrap_model
from lucidtrace.probes.attribution import attribute
from lucidtrace.probes.models import LoadedModel
from lucidtrace.probes.scoring import score
from tests.model.conftest import CueItem
from tests.model.tiny import make_gpt2_model

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _content_scores(lm: LoadedModel, item: CueItem, method: str) -> list[float]:
    result = attribute(lm, item.text, item.answer, method=method, chat=True)
    return [result.scores[index] for index in result.content_tokens]


@pytest.mark.parametrize(
    "method", ["occlusion", "gradient_x_input", "integrated_gradients", "attention_rollout"]
)
def test_planted_cue_ranks_first(
    cue_model: LoadedModel, held_out: list[CueItem], method: str
) -> None:
    # Importance is the magnitude of a token's score (AttributionResult.ranking's default).
    hits = 0
    for item in held_out:
        result = attribute(cue_model, item.text, item.answer, method=method, chat=True)
        content = result.content_tokens
        top = next(index for index in result.ranking() if index in content)
        hits += top - content.start == item.cue_word
    assert hits / len(held_out) >= 0.9


def _ranks(values: list[float]) -> torch.Tensor:
    order = torch.tensor(values).argsort()
    ranks = torch.empty(len(values))
    ranks[order] = torch.arange(len(values), dtype=torch.float)
    return ranks


def _spearman(first: list[float], second: list[float]) -> float:
    a, b = _ranks(first), _ranks(second)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_cascading_randomisation_destroys_gradient_x_input(
    cue_model: LoadedModel, held_out: list[CueItem]
) -> None:
    items = held_out[:12]
    original = [[abs(v) for v in _content_scores(cue_model, i, "gradient_x_input")] for i in items]
    donor = make_gpt2_model(cue_model.tokenizer, seed=123)  # fresh weights to copy in
    randomised = copy.deepcopy(cue_model.model)
    blocks = randomised.config.n_layer
    # From the top (logits) down, cumulatively: LM head and final norm, then each block.
    stages = [("lm_head", "transformer.ln_f")] + [
        (f"transformer.h.{index}",) for index in reversed(range(blocks))
    ]
    correlations = []
    for stage in stages:
        for name in stage:
            randomised.get_submodule(name).load_state_dict(donor.get_submodule(name).state_dict())
        lm = wrap_model(randomised, cue_model.tokenizer, name="randomised")
        values = [
            _spearman(before, [abs(v) for v in _content_scores(lm, item, "gradient_x_input")])
            for before, item in zip(original, items, strict=True)
        ]
        correlations.append(sum(values) / len(values))
    assert correlations[-1] < 0.3, correlations
    assert correlations[-1] < correlations[0], correlations


def _answer_probability(lm: LoadedModel, words: list[str], answer: str) -> float:
    return float(torch.tensor(score(lm, " ".join(words), answer, chat=True).total).exp())


def _comprehensiveness(
    lm: LoadedModel, item: CueItem, ranking: list[int], bins: tuple[int, ...] = (1, 2, 3)
) -> float:
    words = item.text.split()
    full = _answer_probability(lm, words, item.answer)
    drops = []
    for k in bins:
        removed = [("<pad>" if index in ranking[:k] else word) for index, word in enumerate(words)]
        drops.append(full - _answer_probability(lm, removed, item.answer))
    return sum(drops) / len(drops)


@pytest.mark.parametrize("method", ["occlusion", "gradient_x_input"])
def test_eraser_comprehensiveness_beats_random_ranking(
    cue_model: LoadedModel, held_out: list[CueItem], method: str
) -> None:
    rng = random.Random(0)
    method_scores, random_scores = [], []
    for item in held_out[:20]:
        magnitudes = [abs(v) for v in _content_scores(cue_model, item, method)]
        ranking = sorted(range(len(magnitudes)), key=lambda index: -magnitudes[index])
        shuffled = rng.sample(range(len(magnitudes)), len(magnitudes))
        method_scores.append(_comprehensiveness(cue_model, item, ranking))
        random_scores.append(_comprehensiveness(cue_model, item, shuffled))
    differences = torch.tensor(method_scores) - torch.tensor(random_scores)
    # Paired comparison: the mean gain must exceed two standard errors.
    standard_error = differences.std() / len(differences) ** 0.5
    assert float(differences.mean()) > 2 * float(standard_error), differences
