"""Observation grounding: claims in thoughts and answers that no recorded observation supports.

For each THOUGHT and ANSWER step the check collects what the step asserts and compares it with
everything recorded *before* it (the question, tool results, retrieved documents, and numbers
already grounded in earlier steps). The agent's own tool arguments ground nothing: a number the
agent typed into a search query is its own guess until a tool result or document states it (a
calculator's result is a tool result, so it grounds; the numbers of its expression ground only
where they came from the question or an earlier result):

* numbers (ten or more, or with decimals, a percent sign or a scale word): supported when they
  match a recorded number (with the rounding and "about" tolerance of
  :mod:`~lucidtrace.probes.checks.trace_checks._text`) or one arithmetic step between two
  recorded numbers (sum, difference, product, ratio, percentage); *contradicted* when they are a
  near miss of a recorded number (a dropped, added, changed or swapped digit; off by a power of
  ten; never for a year or a version number); otherwise *unsupported*;
* quoted passages in a sentence that reports a result ("the search said "..."") or in the
  answer: supported when a recorded observation contains them (nearly) word for word, within
  one passage and with its polarity (a negation added or dropped is no quote);
* claimed tool results ("the calculator returned ...", "according to the weather service ..."):
  unsupported when no tool of that kind was called before the step.

What it cannot show: a claim paraphrased without numbers or quotes, or a number that is right
for the wrong reason. It cannot tell a number the agent knew without a tool (a year, a
constant) from an invented one: both are reported as found in no observation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from lucidtrace.probes.checks.base import CheckContext, CheckResult
from lucidtrace.probes.checks.registry import TRACE_ONLY, register_check
from lucidtrace.probes.checks.trace_checks._text import (
    PLAN_SENTENCE,
    derived,
    extract_numbers,
    extract_quotes,
    find_number,
    near_miss_exempt,
    quote_support,
    sentences,
)
from lucidtrace.probes.checks.trace_checks._trail import (
    WORD_TO_CATEGORY,
    Seen,
    Trail,
    TrailEntry,
    tool_categories,
    tool_category,
)

__all__ = ["ObservationGrounding"]

_MIN_CLAIM_NUMBER = 10.0
_RESULT_CUE = re.compile(
    r"\b(?:return(?:ed|s)?|sa(?:id|ys)|state[sd]?|show(?:s|ed)?|reads?|report(?:s|ed)?|"
    r"according to|found that|output(?:s|ted)?|gave|gives|came back(?: with)?|told|"
    r"confirm(?:s|ed)?|indicate[sd]?|mention(?:s|ed)?|list(?:s|ed)|yield(?:s|ed)?|"
    r"result (?:is|was)|results (?:are|were|show))\b",
    re.IGNORECASE,
)


_TYPED = "typed_into_tool_call"


@dataclass
class _Problem:
    score: float
    kind: str  # "contradicted", "unsupported", "phantom_tool", "unsupported_quote"
    claim: str
    found: str
    expected: str | None = None
    observation: Seen | None = None
    detail: str = ""


@register_check
class ObservationGrounding:
    """Thoughts and answers assert tool results, quotes or numbers that were never observed."""

    name: ClassVar[str] = "observation_grounding"
    version: ClassVar[str] = "1.1"
    access: ClassVar[str] = TRACE_ONLY
    cost: ClassVar[str] = "free"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = (
        "A thought or the answer states a number, quote or tool result that no tool output, "
        "retrieved document or the question contains, or contradicts one (a near-miss number)."
    )
    score_meaning: ClassVar[str] = (
        "Per step, the highest unsupportedness of one claim: 1.0 for a number no observation "
        "contains or contradicts, or a tool result claimed from a tool that was never called; "
        "for a quote, 1 - the best share of its words found in one observation. Flagged at or "
        "above the threshold."
    )
    paper: ClassVar[str] = (
        "Attribution / groundedness evaluation of generated text against retrieved evidence "
        "(Rashkin et al. 2023, 'Measuring Attribution in Natural Language Generation Models')"
    )

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        """Check every thought and answer against the observations recorded before it."""
        trail = Trail.from_detail(context.detail)
        grounded: list[float] = []
        results: list[CheckResult] = []
        checked = 0
        top = 0.0
        for entry in trail.entries:
            if entry.type not in {"THOUGHT", "ANSWER"} or not entry.text.strip():
                continue
            problems, claims, supported = _check_step(entry, grounded)
            checked += claims
            grounded.extend(supported)
            if not problems:
                continue
            worst = max(problems, key=lambda problem: problem.score)
            top = max(top, worst.score)
            if worst.score < threshold:
                continue
            results.append(_flag(entry, worst, problems, threshold))
        if results:
            return results
        if checked == 0:
            return [
                CheckResult(
                    status="inconclusive",
                    message="no thought or answer states a number, quote or tool result to check",
                    score=None,
                    threshold=threshold,
                )
            ]
        return [
            CheckResult(
                status="passed",
                message=(
                    f"each of the {checked} checked claims (numbers, quotes, tool results) matches "
                    "a recorded tool output, document or the question"
                ),
                score=top,
                threshold=threshold,
                evidence={"claims_checked": checked},
            )
        ]


def _flag(
    entry: TrailEntry, worst: _Problem, problems: list[_Problem], threshold: float
) -> CheckResult:
    where = "answer" if entry.type == "ANSWER" else "stated reasoning"
    if worst.kind == "contradicted":
        message = (
            f"the {where} is not supported by the recorded tool outputs: it states {worst.found}, "
            f"while {_source_name(worst.observation)} recorded {worst.expected}"
        )
    elif worst.kind == "phantom_tool":
        message = (
            f"the {where} reports a result from a {worst.detail} tool, but no such tool was "
            "called before this step"
        )
    elif worst.kind == "unsupported_quote":
        message = (
            f"the {where} quotes \u201c{_short(worst.found)}\u201d, which no recorded tool output "
            "or document contains"
        )
    elif worst.detail == _TYPED and worst.observation is not None:
        message = (
            f"the {where} states {worst.found}, which no recorded tool output, document or the "
            "question contains: only the agent's own arguments to "
            f"{_source_name(worst.observation)} do, and a value the agent typed into a tool call "
            "is not an observation"
        )
    else:
        message = (
            f"the {where} states {worst.found}, which no recorded tool output, document or the "
            "question contains"
        )
    evidence: dict[str, Any] = {
        "claim": _short(entry.text, 600),
        "found": worst.found,
        "kind": worst.kind,
        "unsupported_claims": [
            {"kind": p.kind, "found": p.found, "expected": p.expected, "score": p.score}
            for p in problems
        ],
    }
    if worst.expected is not None:
        evidence["expected"] = worst.expected
    if worst.observation is not None:
        # For a value only the agent's own tool call contains, point at that call instead.
        typed = worst.detail == _TYPED
        evidence["tool_arguments" if typed else "observation"] = _short(worst.observation.text, 600)
        if worst.observation.step is not None:
            span_id, seq = worst.observation.step
            key = "tool_call_step" if typed else "observation_step"
            evidence[key] = {"span_id": span_id, "seq": seq}
    return CheckResult(
        status="flagged",
        message=message,
        score=worst.score,
        threshold=threshold,
        evidence=evidence,
        step=entry.step,
    )


def _source_name(seen: Seen | None) -> str:
    if seen is None:
        return "the trace"
    if seen.kind == "observation":
        return f"the {seen.tool} tool" if seen.tool else "a tool"
    if seen.kind == "document":
        return f"document {seen.doc_id}" if seen.doc_id else "a retrieved document"
    if seen.kind == "action":
        return f"the {seen.tool} tool" if seen.tool else "a tool call"
    return "the question"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _check_step(
    entry: TrailEntry, grounded: list[float]
) -> tuple[list[_Problem], int, list[float]]:
    """Problems of one step, the number of claims checked, and the numbers it grounded."""
    sources = [seen for seen in entry.seen_before if seen.text]
    # The agent's own tool arguments are no source: a number it typed into a search query
    # ("Mount Everest height 8,978.25 m") is its own guess, not something it observed. Only the
    # question, tool results and retrieved documents ground a claim (and arithmetic on them).
    mentions = [
        (mention, seen)
        for seen in sources
        if seen.kind != "action"
        for mention in extract_numbers(seen.text)
    ]
    recorded: list[tuple[float, Seen | None]] = [
        (mention.value, seen) for mention, seen in mentions
    ]
    exempt = near_miss_exempt(mention for mention, _ in mentions)
    recorded.extend((value, None) for value in grounded)
    values = [value for value, _ in recorded]
    problems: list[_Problem] = []
    supported: list[float] = []
    claims = 0
    # A plan ("I will compute 12 * 12") announces, it does not assert: its numbers are no claims.
    asserted = " ".join(
        sentence for sentence in sentences(entry.text) if not PLAN_SENTENCE.search(sentence)
    )
    for mention in extract_numbers(asserted, min_value=_MIN_CLAIM_NUMBER):
        claims += 1
        status, value = find_number(mention, values, exempt=exempt)
        if status == "match" or (status == "none" and derived(mention, values)):
            supported.append(mention.value)
            # A grounded intermediate result supports the next step of a written-out
            # calculation ("12 * 3 = 36, and 36 + 4 = 40").
            values.append(mention.value)
            continue
        if status == "near" and value is not None:
            seen = next((s for v, s in recorded if v == value and s is not None), None)
            problems.append(
                _Problem(1.0, "contradicted", entry.text, mention.text, _fmt(value), seen)
            )
            continue
        typed = next(
            (
                seen
                for seen in sources
                if seen.kind == "action"
                and find_number(mention, [m.value for m in extract_numbers(seen.text)])[0]
                == "match"
            ),
            None,
        )
        detail = _TYPED if typed is not None else ""
        problems.append(_Problem(1.0, "unsupported", entry.text, mention.text, None, typed, detail))
    observed_texts = [seen.text for seen in sources if seen.kind != "action"]
    for sentence in sentences(entry.text):
        cue = _RESULT_CUE.search(sentence)
        if cue is None and entry.type != "ANSWER":
            continue
        for quote in extract_quotes(sentence):
            claims += 1
            best = quote_support(quote, observed_texts)
            if best >= 1.0:
                continue
            problems.append(
                _Problem(round(1.0 - best, 4), "unsupported_quote", entry.text, quote, None, None)
            )
        if cue is None:
            continue
        category = _claimed_tool(sentence, cue)
        if category is None:
            continue
        claims += 1
        if not _tool_called(category, sources):
            problems.append(
                _Problem(1.0, "phantom_tool", entry.text, _short(sentence), None, None, category)
            )
    return problems, claims, supported


def _claimed_tool(sentence: str, cue: re.Match[str]) -> str | None:
    """The kind of tool a sentence says produced a result, or None when it names none."""
    before = re.findall(r"[A-Za-z_]+", sentence[: cue.start()])[-5:]
    after = re.findall(r"[A-Za-z_]+", sentence[cue.end() :])[:4]
    words = before + (after if cue.group(0).lower() == "according to" else [])
    for word in words:
        lowered = word.lower()
        if "_" in lowered:
            return tool_category(lowered)
        category = WORD_TO_CATEGORY.get(lowered)
        if category is not None and lowered not in {"read", "table", "event", "events", "price"}:
            return category
    return None


def _tool_called(category: str, sources: Iterable[Seen]) -> bool:
    for seen in sources:
        if (
            seen.kind == "observation"
            and seen.tool
            and (tool_category(seen.tool) == category or category in tool_categories(seen.tool))
        ):
            return True
        if seen.kind == "document" and category == "search":
            return True
        if seen.kind == "observation" and seen.tool is None:
            return True  # a result of an unknown tool: give the claim the benefit of the doubt
    return False


def _fmt(value: float) -> str:
    if value == int(value) and 1000 <= value <= 2100:
        return str(int(value))  # a year: "2022", not "2,022"
    if value == int(value) and abs(value) < 1e18:
        return f"{int(value):,}"
    return f"{value:,.6g}"
