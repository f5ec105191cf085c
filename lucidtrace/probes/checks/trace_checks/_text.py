"""Text analysis shared by the trace-only checks: numbers, quotes, content words, polarity.

Everything is plain rule-based text processing (no model, no LLM judge), so a finding can always
be traced to the words that caused it.

Numbers: ``150,356,266,564``, ``3.9 million``, ``12%``, ``$4.5bn``, ``-3.2``, ``1e6`` are read as
values. A stated number *matches* a recorded one when it is equal, when it is the recorded
value rounded to the stated precision (``390,000`` or ``3.9 million`` for 387,758 / 3,874,512),
when it is stated as approximate ("about", "around", "roughly", "~", ...) and within
:data:`APPROX_PLACES` units of its last stated digit, or as a percentage of a recorded fraction
(``25%`` for 0.25). A stated number is a *near miss* of a recorded one (the typical slip when
copying a tool result) when its digits, at the stated precision, differ by one dropped, added,
changed or swapped digit, or by a power of ten. Years (whole numbers from 1000 to 2100 written
without separator, decimals, scale or percent: "2022" and "2023") and dotted version numbers
("3.11.4" and "3.12") are never near misses: one digit apart is another year or release, not a
slip.

Quotes: a quoted passage is found in a source when it occurs there word for word, or nearly so
within one contiguous passage (a sentence, or a window of twice the quote's length), and with the
same polarity as that passage (a negation added or dropped reverses what it says).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

__all__ = [
    "APPROX_PLACES",
    "PLAN_SENTENCE",
    "NumberMention",
    "content_words",
    "derived",
    "extract_numbers",
    "extract_quotes",
    "find_number",
    "near_miss",
    "near_miss_exempt",
    "normalize",
    "number_matches",
    "polarity_terms",
    "quote_found",
    "quote_support",
    "sentences",
    "stem",
    "strip_citations",
    "word_overlap",
]

APPROX_PLACES = 2.0
"""A number stated as approximate ("about 390,000") may be off by this many units of its last
stated digit (here 20,000): "about 390,000" fits 387,758, "about 7,719,000" does not fit
7,790,867."""

_SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}
_NUMBER = re.compile(
    r"(?:(?<![\w.])(?P<sign>[-\u2212])(?=[$€£¥]?\d))?(?<![A-Za-z_]-)(?<![\w.])(?P<cur>[$€£¥])?"
    r"(?P<num>(?:\d{1,3}(?:[,\u202f\u00a0'](?:\d{3}))+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"(?P<pct>\s?%| percent\b| per cent\b)?"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|mn|bn|tn|k|m|b)\b)?"
    r"(?!\w*\d)(?!(?:st|nd|rd|th)\b)",  # no digits glued on; no ordinals ("20th")
    re.IGNORECASE,
)
_APPROX = re.compile(
    r"(?:about|around|approximately|approx\.?|roughly|nearly|almost|some|circa|ca\.|"
    r"close to|just over|just under|over|under|more than|less than|at least|at most|"
    r"~|≈|estimated|an estimated)\s*[$€£¥]?$",
    re.IGNORECASE,
)
PLAN_SENTENCE = re.compile(
    r"(?:^|\b)(?:I(?:'ll| will| shall| should| need to| must| am going to|'m going to| want to|"
    r" have to| plan to)|let me|let's|my next step is to|the next step is to|next,? I(?:'ll| will|"
    r" need to| should)?|now,? I(?:'ll| will| need to| should)|first,? I(?:'ll| will| need to|"
    r" should))\s+(?P<rest>.+)",
    re.IGNORECASE,
)
"""A sentence announcing what the agent will do ("I will ...", "Let me ...", "Next I need to ...");
the announced part is the ``rest`` group."""

_DATE_OR_TIME = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b|\b\d{1,2}:\d{2}\b"
)
_VERSION_CONTEXT = re.compile(
    r"\b(?:version|ver\.?|release|python|node(?:\.js)?|ubuntu|debian|kernel|java|php|ruby)\s*$",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\d{4}")
_IDENTIFIER = re.compile(r"\b[A-Za-z][\w.-]*[:#/-]\w*\d[\w:/#.-]*")
_CITATION_MARK = re.compile(r"\[[^\[\]\s]{1,200}\]")
_QUOTE = re.compile(r"\"([^\"]{4,300})\"|\u201c([^\u201d]{4,300})\u201d|'([^']{8,300})'(?!\w)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"\u201c(\[0-9])|\n+")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    few for from further had has have having he her here hers him his how i if in into is it
    its itself just let like me more most my no nor not now of off on once only or other our
    out over own same she should so some such than that the their them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours i'll i'm i've let's me next need needs first then
    now going use using tool call result results returned return says said say shows show
    according answer final thought observation based so therefore thus hence okay ok well
    find look check get got give given know tell found lookup search searched compute
    computed calculate calculated calculator step one two per""".split()  # noqa: SIM905 - a word list reads better as text
)
"""Function words and agent boilerplate ignored when comparing content."""

_POSITIVE_NEGATIVE = {
    "open": ("open", True),
    "opened": ("open", True),
    "closed": ("open", False),
    "close": ("open", False),
    "shut": ("open", False),
    "available": ("available", True),
    "allowed": ("allowed", True),
    "permitted": ("allowed", True),
    "prohibited": ("allowed", False),
    "forbidden": ("allowed", False),
    "banned": ("allowed", False),
    "true": ("true", True),
    "false": ("true", False),
    "correct": ("true", True),
    "incorrect": ("true", False),
    "valid": ("valid", True),
    "invalid": ("valid", False),
    "expired": ("valid", False),
    "approved": ("approved", True),
    "rejected": ("approved", False),
    "denied": ("approved", False),
    "safe": ("safe", True),
    "unsafe": ("safe", False),
    "dangerous": ("safe", False),
    "active": ("active", True),
    "inactive": ("active", False),
    "cancelled": ("active", False),
    "canceled": ("active", False),
    "delayed": ("ontime", False),
    "punctual": ("ontime", True),
    "compatible": ("compatible", True),
    "incompatible": ("compatible", False),
    "supported": ("supported", True),
    "unsupported": ("supported", False),
    "deprecated": ("supported", False),
    "passed": ("passed", True),
    "failed": ("passed", False),
    "increased": ("rise", True),
    "increase": ("rise", True),
    "rose": ("rise", True),
    "grew": ("rise", True),
    "decreased": ("rise", False),
    "decrease": ("rise", False),
    "fell": ("rise", False),
    "declined": ("rise", False),
    "dropped": ("rise", False),
    "possible": ("possible", True),
    "impossible": ("possible", False),
    "legal": ("legal", True),
    "illegal": ("legal", False),
    "present": ("present", True),
    "absent": ("present", False),
    "missing": ("present", False),
    "included": ("included", True),
    "excluded": ("included", False),
    "instock": ("available", True),
    "outofstock": ("available", False),
    "unavailable": ("available", False),
    "ontime": ("ontime", True),
    "yes": ("yes", True),
    "no": ("yes", False),
}
_NEGATIONS = frozenset(
    {"not", "no", "never", "none", "cannot", "can't", "isn't", "aren't", "wasn't", "weren't",
     "doesn't", "don't", "didn't", "won't", "hasn't", "haven't", "without", "nor", "neither"}
)  # fmt: skip
_PHRASES = (
    (re.compile(r"\bout of stock\b", re.IGNORECASE), "outofstock"),
    (re.compile(r"\bin stock\b", re.IGNORECASE), "instock"),
    (re.compile(r"\bon time\b", re.IGNORECASE), "ontime"),
    (re.compile(r"\bon schedule\b", re.IGNORECASE), "ontime"),
)


@dataclass(frozen=True)
class NumberMention:
    """A number found in text.

    Attributes:
        value: The value (scale words applied; a percentage as written: 12% is 12.0).
        text: The text as written.
        start: Offset of the mention in the text.
        end: End offset.
        unit: Half of the last stated digit's place (the rounding a reader grants).
        approx: Stated as approximate ("about ...").
        percent: Written with ``%`` or "percent".
        digits: The significant digits as written (for near-miss comparison).
        version: Part of a dotted version number ("3.11" of "3.11.4", or "version 3.12").
    """

    value: float
    text: str
    start: int
    end: int
    unit: float
    approx: bool
    percent: bool
    digits: str
    version: bool = False

    @property
    def year_like(self) -> bool:
        """Whether the mention reads as a year: 1000 to 2100, four bare digits ("2022")."""
        return bool(_YEAR.fullmatch(self.text)) and 1000 <= self.value <= 2100


def normalize(text: str) -> str:
    """Lower case, typographic quotes and dashes made plain, whitespace collapsed."""
    text = (
        text.replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("\u201c", '"')
        .replace("\u201d", '"')
    )
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2212", "-")
    return " ".join(text.lower().split())


def strip_citations(text: str) -> str:
    """``text`` without bracketed citation markers (``[doc-1]``, ``[2]``)."""
    return _CITATION_MARK.sub(" ", text)


def extract_numbers(text: str, *, min_value: float = 0.0) -> list[NumberMention]:
    """Numbers stated in ``text`` (citation markers and identifiers such as ``doc-3`` skipped).

    Args:
        text: Any text.
        min_value: Integers written without decimals, percent or scale and below this value are
            skipped (counting words such as "2 sources" or "step 3" are not claims).
    """
    # Dates and clock times are not quantities; blanked (same length) so offsets stay valid.
    blank = lambda m: " " * len(m.group(0))  # noqa: E731 - local helper
    cleaned = _IDENTIFIER.sub(blank, _DATE_OR_TIME.sub(blank, strip_citations(text)))
    found: list[NumberMention] = []
    for match in _NUMBER.finditer(cleaned):
        raw = match.group("num")
        plain = re.sub(r"[,\u202f\u00a0']", "", raw)
        try:
            value = float(plain)
        except ValueError:
            continue
        scale_word = (match.group("scale") or "").lower()
        if scale_word in {"m", "b", "k"} and not match.group("cur"):
            # "5 m" is more often metres than millions; only "$5m" is money.
            scale_word = ""
        scale = _SCALES.get(scale_word, 1.0)
        decimals = len(plain.split(".", 1)[1]) if "." in plain and "e" not in plain.lower() else 0
        if decimals:
            place = 10.0**-decimals
        elif "e" in plain.lower():
            place = 0.0
        else:
            integer = plain.lstrip("-")
            zeros = len(integer) - len(integer.rstrip("0")) if integer.strip("0") else 0
            significant = len(integer.rstrip("0"))
            # Trailing zeros read as rounding when there are two or more ("5,201,000") or the
            # number is short ("150"); "558570" is read as exact.
            rounded = zeros >= 2 or (zeros >= 1 and significant <= 2)
            place = 10.0**zeros if rounded else 1.0
        percent = bool(match.group("pct"))
        if match.group("sign"):
            value = -value
        if (
            not decimals
            and not percent
            and scale == 1.0
            and not match.group("cur")
            and abs(value) < min_value
        ):
            continue
        before = cleaned[max(0, match.start() - 24) : match.start()]
        digits = re.sub(r"\D", "", raw.split(".")[0] + (raw.split(".")[1] if "." in raw else ""))
        version = bool(decimals) and (
            bool(re.match(r"\.\d", cleaned[match.end() :]))
            or bool(_VERSION_CONTEXT.search(before.rstrip()))
        )
        found.append(
            NumberMention(
                value=value * scale,
                text=match.group(0).strip(),
                start=match.start(),
                end=match.end(),
                unit=place * scale / 2 if place else 0.0,
                approx=bool(_APPROX.search(before.rstrip())),
                percent=percent,
                digits=digits.lstrip("0") or "0",
                version=version,
            )
        )
    return found


def number_matches(stated: NumberMention, recorded: float) -> bool:
    """Whether ``stated`` can be read as the recorded value (see the module docstring)."""
    candidates = [recorded]
    if stated.percent:
        candidates.append(recorded * 100)
    for value in candidates:
        if math.isclose(stated.value, value, rel_tol=1e-9, abs_tol=1e-12):
            return True
        if stated.unit and abs(stated.value - value) <= stated.unit * (1 + 1e-9):
            return True
        if stated.approx and abs(stated.value - value) <= APPROX_PLACES * 2 * stated.unit:
            return True
    return False


def _digits_of(value: float) -> str:
    text = f"{abs(value):.6f}".rstrip("0").rstrip(".")
    return re.sub(r"\D", "", text).lstrip("0") or "0"


def _edit_distance_one(a: str, b: str) -> bool:
    if a == b:
        return False
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def near_miss(stated: NumberMention, recorded: float) -> bool:
    """Whether ``stated`` looks like a miscopy of ``recorded`` (not a match, but close in digits).

    One digit dropped, added, changed or two neighbours swapped (numbers of three or more
    significant digits), or the same digits off by a power of ten. A year or a version number
    is never a near miss (see the module docstring).
    """
    if number_matches(stated, recorded) or recorded == 0 or stated.value == 0:
        return False
    if stated.year_like or stated.version:
        return False
    place = 2 * stated.unit
    mine = _digits_at(stated.value, place)
    theirs = _digits_at(recorded, place)
    if len(mine) < 3 and len(theirs) < 3:
        return False
    for power in (-3, -2, -1, 1, 2, 3):
        if number_matches(stated, recorded * 10.0**power):
            return True
    if min(len(mine), len(theirs)) < 3:
        return False
    return _edit_distance_one(mine, theirs)


def _digits_at(value: float, place: float) -> str:
    """The digits of ``value`` rounded to the stated place (``7,790,867`` at 1,000: ``7791``)."""
    if place >= 1:
        text = str(round(abs(value) / place))
    elif place > 0:
        decimals = max(0, round(-math.log10(place)))
        text = f"{abs(value):.{decimals}f}".replace(".", "")
    else:
        text = _digits_of(value)
    return text.lstrip("0") or "0"


def near_miss_exempt(mentions: Iterable[NumberMention]) -> set[float]:
    """Values of recorded mentions that no stated number can be a near miss of (years, versions).

    Pass it as ``exempt`` to :func:`find_number`.
    """
    return {mention.value for mention in mentions if mention.year_like or mention.version}


def find_number(
    stated: NumberMention, recorded: Iterable[float], *, exempt: Collection[float] = ()
) -> tuple[str, float | None]:
    """``("match", value)``, ``("near", value)`` or ``("none", None)`` against recorded values.

    Args:
        stated: The number as stated.
        recorded: Recorded values.
        exempt: Recorded values that are years or version numbers (:func:`near_miss_exempt`):
            matched, but never reported as near misses.
    """
    values = list(recorded)
    for value in values:
        if number_matches(stated, value):
            return "match", value
    for value in values:
        if value not in exempt and near_miss(stated, value):
            return "near", value
    return "none", None


_MAX_DERIVED_INPUTS = 40


def derived(mention: NumberMention, values: Sequence[float]) -> bool:
    """Whether ``mention`` is one arithmetic step away from two of ``values``.

    Sum, difference, product, ratio or percentage, matched exactly at the stated precision
    (an "about" is not granted: a derived value must be computed, not estimated).
    """
    exact = replace(mention, approx=False) if mention.approx else mention
    unique = list(dict.fromkeys(values))[:_MAX_DERIVED_INPUTS]
    for i, a in enumerate(unique):
        for b in unique[i:]:
            candidates = [a + b, a - b, b - a, a * b]
            if b:
                candidates += [a / b, a * 100 / b]
            if a:
                candidates += [b / a, b * 100 / a]
            if any(number_matches(exact, value) for value in candidates):
                return True
    return False


def extract_quotes(text: str) -> list[str]:
    """Quoted passages of at least a few characters (straight, curly and single quotes)."""
    quotes: list[str] = []
    for match in _QUOTE.finditer(text):
        quote = next(group for group in match.groups() if group)
        if len(quote.split()) >= 2:
            quotes.append(quote.strip())
    return quotes


def stem(word: str) -> str:
    """A crude stem: lower case, possessive and common suffixes cut, at most 6 letters kept."""
    word = word.lower().strip("'\u2019-")
    for suffix in ("'s", "\u2019s"):
        word = word.removesuffix(suffix)
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:6]


def content_words(text: str) -> set[str]:
    """Stems of the content words of ``text`` (stopwords and agent boilerplate removed)."""
    words = _WORD.findall(strip_citations(text))
    return {stem(word) for word in words if word.lower() not in STOPWORDS and len(word) > 2}


def word_overlap(claim: str, source: str) -> float:
    """Fraction of the claim's content words found in the source (1.0 when the claim has none)."""
    mine = content_words(claim)
    if not mine:
        return 1.0
    return len(mine & content_words(source)) / len(mine)


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (on ``.!?`` followed by a capital, and on line breaks)."""
    parts = [part.strip() for part in _SENTENCE.split(text)]
    return [part for part in parts if part]


def polarity_terms(text: str) -> dict[str, bool]:
    """The polar predicates ``text`` asserts: ``{"open": False}`` for "the shop is closed".

    A negation word among the three words before a predicate flips it ("not open" is
    ``open: False``). Predicates asserted both ways in the same text are dropped.
    """
    lowered = text.lower().replace("\u2019", "'")
    for pattern, token in _PHRASES:
        lowered = pattern.sub(token, lowered)
    words = re.findall(r"[a-z][a-z']*", lowered)
    found: dict[str, set[bool]] = {}
    for index, word in enumerate(words):
        entry = _POSITIVE_NEGATIVE.get(word)
        if entry is None:
            continue
        key, positive = entry
        if key == "yes" and index > 0:
            continue  # only a leading yes/no answers the question
        window = words[max(0, index - 3) : index]
        if key != "yes" and any(w in _NEGATIONS or w.endswith("n't") for w in window):
            positive = not positive
        found.setdefault(key, set()).add(positive)
    return {key: next(iter(values)) for key, values in found.items() if len(values) == 1}


def quote_found(quote: str, sources: Sequence[str]) -> bool:
    """Whether a quoted passage occurs in one of the sources with the same meaning.

    Word for word (normalised), or nearly: within one contiguous passage of a source (a
    sentence, or a window of twice the quote's length inside one), at least 80% of the quote's
    content words occur and every number in the quote matches a number there. Either way the
    quote must have the passage's polarity: a negation added or dropped ("keys are exempt" from
    "keys are not exempt") is no quote of it.
    """
    return quote_support(quote, sources) >= 1.0


def quote_support(quote: str, sources: Sequence[str]) -> float:
    """1.0 when :func:`quote_found`; else the best share of the quote's words in one passage.

    0.0 when a passage holds (nearly) all of the quote's words with the opposite polarity: the
    quote reverses what the source says.
    """
    wanted = normalize(quote).strip(" .,;:")
    if not wanted:
        return 0.0
    best = 0.0
    for source in sources:
        plain = normalize(source)
        start = plain.find(wanted)
        while start >= 0:
            # The three words before the quote, within its clause ("not" + "exempt ...").
            clause = re.split(r"[.!?;:,]", plain[:start])[-1]
            context = " ".join(clause.split()[-3:])
            if _same_polarity(wanted, f"{context} {wanted}"):
                return 1.0
            start = plain.find(wanted, start + 1)
    numbers = extract_numbers(quote)
    reversed_ = False
    for source in sources:
        for passage in _passages(quote, source):
            overlap = word_overlap(quote, passage)
            if overlap < 0.8 and overlap <= best:
                continue
            if not _same_polarity(quote, _matched_span(quote, passage)):
                reversed_ = reversed_ or overlap >= 0.8
                continue
            if overlap >= 0.8:
                values = [mention.value for mention in extract_numbers(passage)]
                if all(find_number(number, values)[0] == "match" for number in numbers):
                    return 1.0
            best = max(best, overlap)
    return 0.0 if reversed_ else best


def _passages(quote: str, source: str) -> Iterable[str]:
    """Contiguous passages of ``source`` that ``quote`` may come from.

    Runs of as many sentences as the quote has, cut into windows of twice the quote's length
    where longer.
    """
    size = max(1, len(sentences(quote)))
    width = 2 * max(2, len(quote.split()))
    step = max(1, width // 4)
    parts = sentences(source)
    for first in range(max(1, len(parts) - size + 1)):
        words = " ".join(parts[first : first + size]).split()
        if len(words) <= width:
            yield " ".join(words)
            continue
        for start in range(0, len(words) - width + step, step):
            yield " ".join(words[start : start + width])


def _matched_span(quote: str, passage: str) -> str:
    """The part of ``passage`` from three words before the first to the last quoted word."""
    wanted = content_words(quote)
    words = _WORD.findall(strip_citations(passage))
    hits = [
        index
        for index, word in enumerate(words)
        if word.lower() not in STOPWORDS and len(word) > 2 and stem(word) in wanted
    ]
    if not hits:
        return passage
    return " ".join(words[max(0, hits[0] - 3) : hits[-1] + 1])


def _negations(text: str) -> int:
    words = re.findall(r"[a-z][a-z']*", text.lower().replace("\u2019", "'"))
    return sum(1 for word in words if word in _NEGATIONS or word.endswith("n't"))


def _same_polarity(quote: str, passage: str) -> bool:
    """Whether a quote asserts what the passage asserts (polar predicates, else negations)."""
    mine = polarity_terms(quote)
    theirs = polarity_terms(passage)
    shared = [key for key in mine if key in theirs and key != "yes"]
    if shared:
        return all(mine[key] == theirs[key] for key in shared)
    return _negations(quote) % 2 == _negations(passage) % 2
