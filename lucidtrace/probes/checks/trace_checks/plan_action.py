"""Plan-action consistency: a thought says what it will do next, the next action does otherwise.

A plan is a sentence of a THOUGHT such as "I will search for the population of Iceland",
"Let me use the calculator to compute 387758 * 2" or "Next I need to call get_weather for
Oslo". The check reads the kind of tool it announces (from verbs and nouns: search, look up,
compute, the weather, a tool name used in the trace) and the terms of its object (numbers,
names, content words), then compares them with the next ACTION: another kind of tool is a
mismatch (score 1.0); the same kind with other arguments scores by the share of the announced
terms missing from the arguments. The action is of the announced kind when any word of its
tool's name is (``python_eval`` carries out "use the calculator"). A tool whose name says
nothing known about its kind (``get_current_conditions``) is judged by its arguments only,
unless the plan named another tool of the trace.

What it cannot show: a plan with no tool words ("I'll think about it"), a plan carried out a
few actions later on purpose, or arguments written in other words than the plan (synonyms).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from lucidtrace.probes.checks.base import CheckContext, CheckResult
from lucidtrace.probes.checks.registry import TRACE_ONLY, register_check
from lucidtrace.probes.checks.trace_checks._text import (
    PLAN_SENTENCE,
    content_words,
    extract_numbers,
    number_matches,
    sentences,
    stem,
)
from lucidtrace.probes.checks.trace_checks._trail import (
    Trail,
    TrailEntry,
    args_text,
    tool_categories,
    tool_category,
)

__all__ = ["PlanActionConsistency"]

# Most specific first: a plan to "look up the weather" announces a weather tool.
_CUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:calculator|calc|math tool)\b", re.I), "calculator"),
    (re.compile(r"\b(?:weather|forecast)\b", re.I), "weather"),
    (re.compile(r"\b(?:convert|exchange rate|currency)\b", re.I), "currency"),
    (re.compile(r"\b(?:translat\w*)\b", re.I), "translate"),
    (re.compile(r"\b(?:query the database|database|sql)\b", re.I), "database"),
    (re.compile(r"\b(?:stock price|share price|ticker)\b", re.I), "stock"),
    (re.compile(r"\b(?:send (?:an )?email|email)\b", re.I), "email"),
    (re.compile(r"\b(?:calendar)\b", re.I), "calendar"),
    (re.compile(r"\b(?:run (?:the )?(?:python|code)|python)\b", re.I), "python"),
    (
        re.compile(
            r"\b(?:search|look(?:ing)? up|lookup|google|browse|query the web|wikipedia)\b", re.I
        ),
        "search",
    ),
    (
        re.compile(
            r"\b(?:calculate|compute|multiply|divide|subtract|add up|sum up|work out|evaluate)\b",
            re.I,
        ),
        "calculator",
    ),
)
_OBJECT_START = re.compile(
    r"^.*?\b(?:for|of|compute|calculate|multiply|divide|subtract|add|evaluate|find|"
    r"look up|search|check|get|fetch|query|convert|translate|about|on|with|in)\b\s*",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*)")
_NOT_NAMES = frozenset({"I", "I'll", "Let", "Next", "Now", "First", "Then", "The", "A"})


@register_check
class PlanActionConsistency:
    """The thought announces one action and the next action is another."""

    name: ClassVar[str] = "plan_action_consistency"
    version: ClassVar[str] = "1.0"
    access: ClassVar[str] = TRACE_ONLY
    cost: ClassVar[str] = "free"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = (
        "A thought says what it will do next (which tool, on what) and the next action calls "
        "another kind of tool, or the same tool on other terms."
    )
    score_meaning: ClassVar[str] = (
        "Per plan: 1.0 when the next action is another kind of tool; otherwise the share of the "
        "announced key terms (numbers, names) missing from its arguments, or 0.6 x the share of "
        "content words missing when the plan names no key term. Flagged at or above the "
        "threshold."
    )
    paper: ClassVar[str] = (
        "ReAct: Synergizing Reasoning and Acting in Language Models (Yao et al. 2023); "
        "consistency of stated plans with actions"
    )

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        """Compare each announced plan with the action that follows it."""
        trail = Trail.from_detail(context.detail)
        tool_names = {entry.tool_name for entry in trail.entries if entry.tool_name}
        results: list[CheckResult] = []
        checked = 0
        top = 0.0
        for position, entry in enumerate(trail.entries):
            if entry.type != "THOUGHT":
                continue
            plan = _last_plan(entry.text, tool_names)
            if plan is None:
                continue
            action = _following_action(trail, position)
            if action is None:
                continue
            checked += 1
            score, expected, found = _mismatch(plan, action)
            top = max(top, score)
            if score < threshold:
                continue
            results.append(
                _flag(
                    entry,
                    action=action,
                    plan=plan,
                    score=score,
                    threshold=threshold,
                    expected=expected,
                    found=found,
                )
            )
        if results:
            return results
        if checked == 0:
            return [
                CheckResult(
                    status="inconclusive",
                    message="no thought announces a tool action that a later action could match",
                    threshold=threshold,
                )
            ]
        return [
            CheckResult(
                status="passed",
                message=f"each of the {checked} announced plans matches the action that followed",
                score=top,
                threshold=threshold,
                evidence={"plans_checked": checked},
            )
        ]


class _Plan:
    """An announced action: the kinds of tool it names (most specific first) and its object."""

    def __init__(self, sentence: str, categories: list[str], obj: str, named: set[str]) -> None:
        self.sentence = sentence
        self.categories = categories
        self.category = categories[0]
        self.obj = obj
        self.named = named  # tools of the trace the plan names


def _last_plan(text: str, tool_names: set[str]) -> _Plan | None:
    """The last tool plan stated in a thought (the one the next action should carry out)."""
    found: _Plan | None = None
    for sentence in sentences(text):
        match = PLAN_SENTENCE.search(sentence)
        if match is None:
            continue
        rest = match.group("rest")
        categories = _categories_of(rest, tool_names)
        if not categories:
            continue
        named = {tool for tool in tool_names if _names_tool(rest, tool)}
        found = _Plan(sentence.strip(), categories, _object_of(rest), named)
    return found


def _categories_of(rest: str, tool_names: set[str]) -> list[str]:
    """Kinds of tool a plan names, most specific first.

    Tools of the trace named in the plan come first, then specific nouns (calculator, weather,
    ...), then generic verbs (search, look up, compute).
    """
    lowered = rest.lower()
    ranked: list[tuple[int, int, str]] = []
    for tool in tool_names:
        for form in _forms(tool):
            position = lowered.find(form)
            if position >= 0:
                ranked.append((0, position, tool_category(tool)))
    for rank, (pattern, category) in enumerate(_CUES, start=1):
        ranked.extend((rank, m.start(), category) for m in pattern.finditer(rest))
    return list(dict.fromkeys(category for _, _, category in sorted(ranked)))


def _forms(tool: str) -> set[str]:
    return {form for form in {tool.lower(), tool.lower().replace("_", " ")} if len(form) >= 3}


def _names_tool(rest: str, tool: str) -> bool:
    lowered = rest.lower()
    return any(form in lowered for form in _forms(tool))


def _other_kind(plan: _Plan, action: TrailEntry) -> bool:
    """Whether the action's tool is another kind than any the plan announces."""
    name = action.tool_name or ""
    kinds = tool_categories(name)
    if (kinds | {tool_category(name)}) & set(plan.categories):
        return False
    if kinds:
        return True
    # A name that says nothing known about the tool's kind: judged by its arguments, unless
    # the plan named another tool of the trace.
    return bool(plan.named) and name not in plan.named


def _object_of(rest: str) -> str:
    obj = _OBJECT_START.sub("", rest, count=1)
    return obj or rest


def _following_action(trail: Trail, position: int) -> TrailEntry | None:
    """The next ACTION, unless another thought or the answer comes first."""
    for entry in trail.entries[position + 1 :]:
        if entry.type == "ACTION":
            return entry
        if entry.type in {"THOUGHT", "ANSWER"} and entry.text.strip():
            return None
    return None


def _key_terms(obj: str) -> tuple[list[Any], set[str]]:
    numbers = extract_numbers(obj)
    names: set[str] = set()
    for match in _CAPITALISED.finditer(obj):
        for word in match.group(1).split():
            if word not in _NOT_NAMES:
                names.add(stem(word))
    return numbers, names


def _mismatch(plan: _Plan, action: TrailEntry) -> tuple[float, str, str]:
    """(score, expected, found) of a plan against the action that followed."""
    arguments = args_text(action.tool_args)
    found = f"{action.tool_name}({arguments[:160]})"
    if _other_kind(plan, action):
        # "Look up the weather" is carried out by a weather tool: any kind the plan names counts.
        return 1.0, f"a {plan.category} tool", found
    numbers, names = _key_terms(plan.obj)
    arg_values = [mention.value for mention in extract_numbers(arguments)]
    arg_words = content_words(arguments) | {stem(w) for w in re.findall(r"[A-Za-z]+", arguments)}
    keys = len(numbers) + len(names)
    if keys:
        unused = list(arg_values)
        missing = 0
        for number in numbers:
            # Each argument number carries out one announced number: "387758 * 387758" is not
            # done by "387758 * 387785".
            hit = next((v for v in unused if number_matches(number, v)), None)
            if hit is None:
                missing += 1
            else:
                unused.remove(hit)
        missing += sum(1 for name in names if name not in arg_words)
        score = missing / keys
    else:
        words = content_words(plan.obj)
        score = 0.6 * (len(words - arg_words) / len(words)) if words else 0.0
    return round(score, 4), f"{plan.category}: {plan.obj[:160]}", found


def _flag(
    entry: TrailEntry,
    *,
    action: TrailEntry,
    plan: _Plan,
    score: float,
    threshold: float,
    expected: str,
    found: str,
) -> CheckResult:
    if score >= 1.0 and _other_kind(plan, action):
        message = (
            f"the stated plan is not what the agent did next: the thought announces "
            f"{expected} (\u201c{plan.sentence[:160]}\u201d), the next action calls "
            f"{action.tool_name}"
        )
    else:
        message = (
            f"the stated plan is not what the agent did next: the thought announces "
            f"\u201c{plan.sentence[:160]}\u201d, the next action is {found}"
        )
    return CheckResult(
        status="flagged",
        message=message,
        score=score,
        threshold=threshold,
        evidence={
            "claim": plan.sentence,
            "expected": expected,
            "found": found,
            "observation": found,
            "observation_step": {"span_id": action.step[0], "seq": action.step[1]},
        },
        step=entry.step,
    )
