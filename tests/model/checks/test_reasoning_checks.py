"""Early answering, mistake injection and filler control tell a model whose answer follows from
its reasoning apart from one whose answer is fixed by the question (reasoning as noise)."""

from __future__ import annotations

import json
import random

import pytest

from lucidtrace.probes.checks.base import CheckContext, CheckResult
from lucidtrace.probes.checks.registry import get_check
from lucidtrace.probes.models import LoadedModel
from tests.model.checks._tasks import Example, make_detail, reasoning_task

pytestmark = pytest.mark.model

SEPARATING = ("early_answering", "mistake_injection", "filler_control")


def run_check(name: str, lm: LoadedModel, example: Example) -> CheckResult:
    check = get_check(name)
    context = CheckContext(detail=make_detail(example), model=lm)
    results = check.run(context, threshold=check.default_threshold)
    assert len(results) == 1
    return results[0]


def examples(kind: str, count: int, seed: int) -> list[Example]:
    rng = random.Random(seed)
    make = reasoning_task(kind)
    return [make(rng)[0] for _ in range(count)]


@pytest.mark.parametrize("name", SEPARATING)
def test_flags_posthoc_and_passes_faithful(
    name: str, faithful_model: LoadedModel, posthoc_model: LoadedModel
) -> None:
    faithful = [run_check(name, faithful_model, ex) for ex in examples("faithful", 6, seed=11)]
    posthoc = [run_check(name, posthoc_model, ex) for ex in examples("posthoc", 6, seed=12)]
    assert [r.status for r in faithful] == ["passed"] * 6, [r.message for r in faithful]
    assert [r.status for r in posthoc] == ["flagged"] * 6, [r.message for r in posthoc]
    # The scores separate with a margin, not just across the threshold.
    faithful_scores = [float(r.score) for r in faithful if r.score is not None]
    posthoc_scores = [float(r.score) for r in posthoc if r.score is not None]
    assert len(faithful_scores) == len(posthoc_scores) == 6
    if name == "filler_control":  # flagged when filler keeps the answer's probability
        # Filler leaves the faithful model guessing between two answers (about half of the
        # probability kept on average); the post-hoc model keeps all of it.
        assert sum(faithful_scores) / 6 < 0.6
        assert min(posthoc_scores) > 0.95
    else:
        assert min(faithful_scores) > 2 * max(posthoc_scores) + 0.1


def test_early_answering_curve_and_saved_map(faithful_model: LoadedModel) -> None:
    example = examples("faithful", 1, seed=3)[0]
    result = run_check("early_answering", faithful_model, example)
    curve = result.evidence["curve"]
    assert curve["x"][0] == 0.0
    assert curve["x"][-1] == 1.0
    assert curve["y"][-1] == 1.0
    # The digit comes last: cutting it off loses about half the probability (a coin flip).
    assert 0.3 < curve["y"][0] < 0.7
    assert result.evidence["claim"] == example.answer
    assert result.step is not None
    (saved,) = result.attributions
    assert saved.method == "occlusion"
    totals = {segment["name"]: segment["total"] for segment in saved.data["segments"]}
    # The occlusion map puts the answer on the step that holds the digit, not on the question
    # or the other step.
    assert totals["step-2"] > 2 * max(abs(totals["question"]), abs(totals["step-1"]))
    assert totals["step-2"] > 0.1
    assert result.evidence["segments"]["step-2"] == pytest.approx(totals["step-2"], abs=1e-3)
    json.dumps(result.evidence)
    json.dumps(dict(saved.data))


def test_mistake_injection_reports_the_edit(faithful_model: LoadedModel) -> None:
    example = Example("w1 red w2 w3", ("first w4", "count is 4"), "even")
    result = run_check("mistake_injection", faithful_model, example)
    (edit,) = result.evidence["edits"]
    assert (edit["from"], edit["to"], edit["segment"]) == ("4", "5", "step-2")
    assert edit["retained"] < 0.1
    assert result.status == "passed"


@pytest.mark.parametrize("name", [*SEPARATING, "explanation_consistency"])
def test_inconclusive_without_reasoning(name: str, faithful_model: LoadedModel) -> None:
    result = run_check(name, faithful_model, Example("w1 red w2 w3", (), "even"))
    assert result.status == "inconclusive"
    assert "reasoning" in result.message


def test_mistake_injection_inconclusive_without_numbers(faithful_model: LoadedModel) -> None:
    example = Example("w1 red w2 w3", ("first w4", "count is w5"), "even")
    result = run_check("mistake_injection", faithful_model, example)
    assert result.status == "inconclusive"
    assert "number" in result.message


@pytest.mark.parametrize(
    "name",
    [
        "early_answering",
        "mistake_injection",
        "filler_control",
        "hint_test",
        "answer_probe",
        "citation_attribution",
        "explanation_consistency",
    ],
)
def test_inconclusive_without_answer(name: str, faithful_model: LoadedModel) -> None:
    detail = make_detail(Example("w1 red w2 w3", ("first w4", "count is 4"), "even"))
    detail.steps.pop()  # no ANSWER step
    detail.trace.output = None
    check = get_check(name)
    (result,) = check.run(
        CheckContext(detail=detail, model=faithful_model), threshold=check.default_threshold
    )
    assert result.status == "inconclusive"
    assert "answer" in result.message
