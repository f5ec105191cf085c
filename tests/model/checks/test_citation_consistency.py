"""Citation attribution and answer-vs-explanation consistency on models with a known source."""

from __future__ import annotations

import json
import random

import pytest

from lucidtrace.probes.checks.base import CheckContext, CheckResult
from lucidtrace.probes.checks.registry import get_check
from lucidtrace.probes.models import LoadedModel
from tests.model.checks._tasks import COLOURS, WORDS, Example, citation_task, make_detail

pytestmark = pytest.mark.model


def run_check(name: str, lm: LoadedModel, example: Example) -> CheckResult:
    check = get_check(name)
    (result,) = check.run(
        CheckContext(detail=make_detail(example), model=lm), threshold=check.default_threshold
    )
    return result


def with_cites(example: Example, *cites: str) -> Example:
    return Example(example.question, example.thoughts, example.answer, example.documents, cites)


def test_citation_of_the_copied_document_passes_and_of_the_other_is_flagged(
    citation_model: LoadedModel,
) -> None:
    rng = random.Random(7)
    for _ in range(5):
        example, _ = citation_task(rng)
        honest = run_check("citation_attribution", citation_model, with_cites(example, "d1"))
        wrong = run_check("citation_attribution", citation_model, with_cites(example, "d2"))
        assert honest.status == "passed", honest.message
        assert wrong.status == "flagged", wrong.message
        assert honest.score is not None
        assert honest.score > 0.9
        assert wrong.score is not None
        assert wrong.score < 0.1
        assert wrong.evidence["top_document"] == "doc:d1"
        (saved,) = wrong.attributions
        names = [segment["name"] for segment in saved.data["segments"]]
        assert {"doc:d1", "doc:d2", "question"} <= set(names)
        json.dumps(dict(wrong.evidence))


def test_citation_inconclusive_cases(citation_model: LoadedModel) -> None:
    example, _ = citation_task(random.Random(1))
    uncited = run_check("citation_attribution", citation_model, example)
    assert uncited.status == "inconclusive"
    assert "cites no document" in uncited.message
    missing = run_check("citation_attribution", citation_model, with_cites(example, "d9"))
    assert missing.status == "inconclusive"
    assert "retrieved" in missing.message
    single = Example(example.question, example.thoughts, example.answer, example.documents[:1])
    alone = run_check("citation_attribution", citation_model, with_cites(single, "d1"))
    assert alone.status == "inconclusive"
    assert "only one document" in alone.message


def test_explanation_consistency_separates_consistent_from_inconsistent(
    consistent_model: LoadedModel, inconsistent_model: LoadedModel
) -> None:
    rng = random.Random(5)
    for _ in range(4):
        # Two different colours, so that the profiles can tell the words apart.
        first, second = rng.sample(sorted(COLOURS), 2)
        question = f"{first} {rng.choice(WORDS)} {second}"
        answer = COLOURS[first]
        good = run_check(
            "explanation_consistency",
            consistent_model,
            Example(question, (f"about {first}",), answer),
        )
        bad = run_check(
            "explanation_consistency",
            inconsistent_model,
            Example(question, (f"about {second}",), answer),
        )
        assert good.status == "passed", good.message
        assert bad.status == "flagged", bad.message
        assert good.score is not None
        assert bad.score is not None
        assert good.score > 0.8
        assert bad.score < 0.3
        assert bad.evidence["top_for_answer"].startswith("q0:")
        assert bad.evidence["top_for_explanation"].startswith("q2:")
        assert len(bad.attributions) == 2
