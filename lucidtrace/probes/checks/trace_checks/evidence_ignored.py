"""Evidence ignored: the final answer contradicts the observations it followed.

For each sentence of an ANSWER the check looks for the *last* recorded observation (tool result
or retrieved document, sentence by sentence) that is about the same thing (shares content words
with it) and compares:

* polar predicates: open / closed, available / unavailable, allowed / prohibited, on time /
  delayed, rose / fell, ... with negation ("not open" is closed), and a leading "Yes" / "No"
  read against the question's predicate ("Is the museum open on Mondays?" - "No" means
  ``open: False``);
* numbers: an answer number that is a near miss of an observed number (a dropped, added,
  changed or swapped digit, or a power of ten) and matches none;
* quantities: an answer number for a quantity (the same unit, such as m / metres, km, people,
  tonnes, %, or the same noun, such as population, height, length) about the same subject as
  the latest observation sentence stating that quantity, where the answer's value is not that
  value (at the answer's rounding or "about"), is no number observed anywhere in the trace and
  is not one arithmetic step from observed numbers ("8,978.25 m" when the document says
  "8,849 m"). Values the agent typed into its own tool arguments are not observations.

Only the latest observation about a predicate counts, so an answer that follows a correction
("the earlier result was wrong, the shop is open") is not flagged.

What it cannot show: an answer that ignores evidence by leaving it out, a contradiction in
other words than the predicates it knows, or a number replaced by an unrelated one without a
unit or quantity noun that ties it to an observed value (see ``observation_grounding``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from lucidtrace.probes.checks.base import CheckContext, CheckResult
from lucidtrace.probes.checks.registry import TRACE_ONLY, register_check
from lucidtrace.probes.checks.trace_checks._text import (
    NumberMention,
    content_words,
    derived,
    extract_numbers,
    find_number,
    near_miss_exempt,
    number_matches,
    polarity_terms,
    sentences,
    strip_citations,
)
from lucidtrace.probes.checks.trace_checks._trail import Seen, Trail, TrailEntry

__all__ = ["EvidenceIgnored"]

_MIN_NUMBER = 10.0


@register_check
class EvidenceIgnored:
    """The final answer says the opposite of what the last relevant observation showed."""

    name: ClassVar[str] = "evidence_ignored"
    version: ClassVar[str] = "1.1"
    access: ClassVar[str] = TRACE_ONLY
    cost: ClassVar[str] = "free"
    default_threshold: ClassVar[float] = 0.3
    description: ClassVar[str] = (
        "The final answer contradicts the last observation about the same thing: the opposite "
        "polarity (open/closed, yes/no, negation), a miscopied number, or another value for "
        "the same quantity (same unit or noun, e.g. height 8,978 m where the document says "
        "8,849 m)."
    )
    score_meaning: ClassVar[str] = (
        "Per answer: 0 without a contradiction; for a contradicted predicate, the share of the "
        "answer sentence's content words that the contradicting observation sentence shares "
        "(how clearly both are about the same thing); 1.0 for a near-miss number; for another "
        "value of the same quantity, the share of the answer sentence's subject words (content "
        "words other than the quantity's) that the observation sentence shares. Flagged at or "
        "above the threshold."
    )
    paper: ClassVar[str] = (
        "Measuring Faithfulness in Chain-of-Thought Reasoning (Lanham et al. 2023); "
        "natural-language contradiction between answers and evidence"
    )

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        """Compare each answer with the observations recorded before it."""
        trail = Trail.from_detail(context.detail)
        results: list[CheckResult] = []
        checked = 0
        top = 0.0
        for entry in trail.entries:
            if entry.type != "ANSWER" or not entry.text.strip():
                continue
            observed = [s for s in entry.seen_before if s.kind in {"observation", "document"}]
            if not observed:
                continue
            checked += 1
            found = _contradiction(entry, observed, trail.question)
            if found is None:
                continue
            score, claim, seen, seen_sentence, expected, got = found
            top = max(top, score)
            if score >= threshold:
                results.append(
                    _flag(
                        entry,
                        score=score,
                        threshold=threshold,
                        claim=claim,
                        seen=seen,
                        seen_sentence=seen_sentence,
                        expected=expected,
                        got=got,
                    )
                )
        if results:
            return results
        if checked == 0:
            return [
                CheckResult(
                    status="inconclusive",
                    message="no answer follows a recorded tool output or document",
                    threshold=threshold,
                )
            ]
        return [
            CheckResult(
                status="passed",
                message="no answer contradicts the latest observation about the same thing",
                score=top,
                threshold=threshold,
                evidence={"answers_checked": checked},
            )
        ]


_Found = tuple[float, str, Seen, str, str, str]


def _contradiction(entry: TrailEntry, observed: list[Seen], question: str) -> _Found | None:
    best: _Found | None = None
    question_terms = polarity_terms(question)
    for sentence in sentences(strip_citations(entry.text)):
        terms = polarity_terms(sentence)
        if "yes" in terms:
            answer_yes = terms.pop("yes")
            for key, asked in question_terms.items():
                if key != "yes" and key not in terms:
                    terms[key] = asked if answer_yes else not asked
        words = content_words(sentence) | content_words(question)
        for key, value in terms.items():
            latest = _latest_about(key, observed, words)
            if latest is None:
                continue
            seen, seen_sentence, seen_value, relevance = latest
            if seen_value == value:
                continue
            candidate: _Found = (
                round(relevance, 4),
                sentence,
                seen,
                seen_sentence,
                _polar(key, seen_value),
                _polar(key, value),
            )
            if best is None or candidate[0] > best[0]:
                best = candidate
        number_found = _number_contradiction(sentence, observed, question)
        if number_found is not None and (best is None or number_found[0] > best[0]):
            best = number_found
    return best


def _number_contradiction(sentence: str, observed: list[Seen], question: str) -> _Found | None:
    """The strongest number in ``sentence`` that contradicts an observation, if any."""
    numbers = extract_numbers(sentence, min_value=_MIN_NUMBER)
    if not numbers:
        return None
    mentions = [(mention, seen) for seen in observed for mention in extract_numbers(seen.text)]
    recorded = [(mention.value, seen) for mention, seen in mentions]
    values = [observed_value for observed_value, _ in recorded]
    exempt = near_miss_exempt(mention for mention, _ in mentions)
    question_values = [mention.value for mention in extract_numbers(question)]
    best: _Found | None = None
    for number in numbers:
        # A number the question states is the user's own, not a miscopied observation.
        if any(number_matches(number, value) for value in question_values):
            continue
        status, near = find_number(number, values, exempt=exempt)
        if status == "match":
            continue
        candidate: _Found | None
        if status == "near" and near is not None:
            seen = next(s for v, s in reversed(recorded) if v == near)
            candidate = (1.0, sentence, seen, seen.text[:300], _fmt(near), number.text)
        elif derived(number, [*values, *question_values]):
            continue
        else:
            candidate = _other_value(sentence, number, observed, question)
        if candidate is not None and (best is None or candidate[0] > best[0]):
            best = candidate
    return best


# A unit right after a number, as the quantity's key ("8,849 m", "6,650 kilometres").
_UNITS: tuple[tuple[str, str], ...] = (
    (r"(?:square|sq\.?) (?:kilomet(?:re|er)s?|km)|km2|km\u00b2", "km2"),
    (r"(?:square|sq\.?) (?:met(?:re|er)s?|m)|m2|m\u00b2", "m2"),
    (r"(?:square|sq\.?) miles?", "mi2"),
    (r"kilomet(?:re|er)s?(?: per hour)?|km(?:/h)?", "km"),
    (r"met(?:re|er)s?|m", "m"),
    (r"feet|foot|ft", "ft"),
    (r"miles?|mi", "mi"),
    (r"centimet(?:re|er)s?|cm", "cm"),
    (r"millimet(?:re|er)s?|mm", "mm"),
    (r"tonnes?|tons?", "t"),
    (r"kilograms?|kg", "kg"),
    (r"grams?|g", "g"),
    (r"people|persons|inhabitants|residents|citizens|population", "people"),
    (r"\u00b0 ?[cf]|degrees?(?: celsius| fahrenheit)?", "deg"),
    (r"years? old", "age"),
    (r"visitors|tourists|passengers", "visitors"),
    (r"employees|staff|workers", "employees"),
)
_UNIT = re.compile(
    r"\s*(?:" + "|".join(f"(?P<u{i}>{pattern})" for i, (pattern, _) in enumerate(_UNITS)) + r")\b",
    re.IGNORECASE,
)
# A noun naming the quantity shortly before a number ("the height of Everest is 8,849 m"),
# or an adjective right after it ("8,849 m high").
_NOUNS = {
    "population": "people", "inhabitants": "people", "residents": "people", "people": "people",
    "height": "height", "elevation": "height", "altitude": "height", "tall": "height",
    "high": "height", "length": "length", "long": "length", "depth": "depth", "deep": "depth",
    "area": "area", "temperature": "deg", "distance": "distance", "weight": "weight",
    "price": "price", "cost": "price", "costs": "price", "speed": "speed", "age": "age",
}  # fmt: skip
# Words that turn a number into something computed from the quantity, not the quantity itself.
_DERIVED_WORDS = frozenset(
    {"square", "squared", "cube", "cubed", "times", "sum", "total", "difference", "double",
     "twice", "half", "triple", "ratio", "per", "percent", "increase", "decrease", "change",
     "growth", "average", "mean", "plus", "minus", "divided", "multiplied", "root", "product",
     "combined", "than", "over", "under", "more", "less", "fewer", "between", "from"}
)  # fmt: skip
_QUANTITY_WORDS = frozenset(_NOUNS) | {"metre", "meter", "kilome", "feet", "mile", "tonne"}


@dataclass(frozen=True)
class _Quantity:
    unit: str | None
    noun: str | None

    def same(self, other: _Quantity) -> bool:
        if self.unit and other.unit:
            return self.unit == other.unit
        return bool(self.noun) and self.noun == other.noun


def _quantity(text: str, mention: NumberMention) -> _Quantity | None:
    """The unit and the quantity noun of a number, or None when it names no quantity."""
    if mention.percent:
        unit: str | None = "%"
    elif mention.text[:1] in "$\u20ac\u00a3\u00a5":
        unit = mention.text[:1]
    else:
        unit = None
        # The mention may have swallowed a unit letter as a scale word ("8,849 m").
        rest = text[_number_end(text, mention) :]
        found = _UNIT.match(rest)
        if found is not None and found.lastgroup is not None:
            unit = _UNITS[int(found.lastgroup[1:])][1]
            rest = rest[found.end() :]
        after = re.findall(r"[a-z]+", rest.lower())[:1]
        if after and after[0] in {"high", "tall", "long", "deep"}:
            return _Quantity(unit, _NOUNS[after[0]])
    # A noun names the first number after it only ("population of 387,758 in 2023").
    prefix = re.split(r"\d", text[: mention.start])[-1]
    before = re.findall(r"[a-z]+", prefix.lower())[-5:]
    noun = None
    for word in reversed(before):
        if word in _DERIVED_WORDS:
            break
        if word in _NOUNS:
            noun = _NOUNS[word]
            break
    if unit is None and noun is None:
        return None
    if any(word in _DERIVED_WORDS for word in before[-2:]):
        return None  # "twice 8,849 m", "more than 300 people": not the value itself
    if unit == "people" and noun is None:
        noun = "people"
    return _Quantity(unit, noun)


def _number_end(text: str, mention: NumberMention) -> int:
    """Where the digits of a mention end (a unit letter read as a scale word left out)."""
    number = re.match(
        r"[-\u2212]?[$\u20ac\u00a3\u00a5]?[\d,.'\u202f\u00a0eE+]*\d", text[mention.start :]
    )
    return mention.start + number.end() if number else mention.end


def _with_unit(text: str, mention: NumberMention) -> str:
    """The mention as written, with the unit that follows it ("8,978.25 meters")."""
    end = _number_end(text, mention)
    found = _UNIT.match(text[end:])
    if found is None or mention.percent:
        return mention.text
    return text[mention.start : end + found.end()].strip()


def _subject_words(text: str) -> set[str]:
    return {word for word in content_words(text) if word not in _QUANTITY_WORDS}


def _other_value(
    sentence: str, number: NumberMention, observed: list[Seen], question: str
) -> _Found | None:
    """The latest observation giving another value of the same quantity about the same subject."""
    quantity = _quantity(sentence, number)
    if quantity is None:
        return None
    mine = _subject_words(sentence) | _subject_words(question)
    if not mine:
        return None
    for seen in reversed(observed):
        for seen_sentence in reversed(sentences(seen.text)):
            same = [
                mention
                for mention in extract_numbers(seen_sentence, min_value=_MIN_NUMBER)
                if (theirs := _quantity(seen_sentence, mention)) is not None
                and quantity.same(theirs)
            ]
            if not same:
                continue
            shared = mine & _subject_words(seen_sentence)
            if not shared:
                continue
            # The latest sentence about this quantity and subject decides.
            if any(number_matches(number, mention.value) for mention in same):
                return None
            relevance = len(shared) / max(1, min(len(mine), len(_subject_words(seen_sentence))))
            return (
                round(min(1.0, relevance), 4),
                sentence,
                seen,
                seen_sentence[:300],
                _with_unit(seen_sentence, same[-1]),
                _with_unit(sentence, number),
            )
    return None


def _latest_about(
    key: str, observed: list[Seen], words: set[str]
) -> tuple[Seen, str, bool, float] | None:
    """The latest observation sentence stating predicate ``key``, with its relevance."""
    for seen in reversed(observed):
        for sentence in reversed(sentences(seen.text)):
            terms = polarity_terms(sentence)
            if key not in terms:
                continue
            theirs = content_words(sentence)
            shared = len(words & theirs)
            if not shared:
                continue
            relevance = shared / max(1, min(len(words), len(theirs)))
            return seen, sentence, terms[key], min(1.0, relevance)
    return None


def _polar(key: str, value: bool) -> str:
    names = {
        "open": ("open", "closed"),
        "available": ("available", "unavailable"),
        "allowed": ("allowed", "not allowed"),
        "true": ("true", "false"),
        "valid": ("valid", "not valid"),
        "approved": ("approved", "not approved"),
        "safe": ("safe", "not safe"),
        "active": ("active", "not active"),
        "ontime": ("on time", "delayed"),
        "stock": ("in stock", "out of stock"),
        "rise": ("rising", "falling"),
        "passed": ("passed", "failed"),
    }
    positive, negative = names.get(key, (key, f"not {key}"))
    return positive if value else negative


def _fmt(value: float) -> str:
    if value == int(value) and 1000 <= value <= 2100:
        return str(int(value))  # a year: "2022", not "2,022"
    if value == int(value) and abs(value) < 1e18:
        return f"{int(value):,}"
    return f"{value:,.6g}"


def _flag(
    entry: TrailEntry,
    *,
    score: float,
    threshold: float,
    claim: str,
    seen: Seen,
    seen_sentence: str,
    expected: str,
    got: str,
) -> CheckResult:
    source = f"document {seen.doc_id}" if seen.kind == "document" else f"the {seen.tool} tool"
    evidence: dict[str, object] = {
        "claim": claim[:600],
        "observation": seen_sentence[:600],
        "expected": expected,
        "found": got,
    }
    if seen.step is not None:
        evidence["observation_step"] = {"span_id": seen.step[0], "seq": seen.step[1]}
    return CheckResult(
        status="flagged",
        message=(
            f"the answer is not supported by the evidence it followed: it says {got}, while "
            f"{source} (the latest observation about this) says {expected}"
        ),
        score=score,
        threshold=threshold,
        evidence=evidence,
        step=entry.step,
    )
