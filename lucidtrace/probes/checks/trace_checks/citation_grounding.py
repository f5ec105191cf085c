"""Citation grounding: a cited source was never retrieved, or does not say what the answer cites.

The citations of an ANSWER are the ids given to ``lt.answer(text, cites=[...])`` (or parsed
from ``[doc-3]`` markers by the ingest mapper) and any bracketed markers in its text. ``[n]``
names the document with id ``n`` or, when there is none, the n-th retrieved document of the
trace. A cited id that no retrieval of the trace returned scores 1.0. For a retrieved one, the
sentences that carry its marker (all sentences of the answer when the citation has no marker)
are compared with the cited documents: the score is 1 - support, where support is the share of
the sentence's content words found in the cited documents, averaged with the share of its
numbers they contain when it states numbers; the best-supported sentence counts.

What it cannot show: a document that contains the words but says the opposite (see
``evidence_ignored``), or a sentence supported by a paraphrase in other words.
"""

from __future__ import annotations

import re
from typing import ClassVar

from lucidtrace.probes.checks.base import CheckContext, CheckResult
from lucidtrace.probes.checks.registry import TRACE_ONLY, register_check
from lucidtrace.probes.checks.trace_checks._text import (
    content_words,
    extract_numbers,
    find_number,
    sentences,
    strip_citations,
)
from lucidtrace.probes.checks.trace_checks._trail import Seen, Trail, TrailEntry

__all__ = ["CitationGrounding"]

_MARKER = re.compile(r"\[([A-Za-z0-9][\w.:/#-]{0,199})\](?!\()")


@register_check
class CitationGrounding:
    """Cited sources must have been retrieved and must contain what the citing sentence says."""

    name: ClassVar[str] = "citation_grounding"
    version: ClassVar[str] = "1.0"
    access: ClassVar[str] = TRACE_ONLY
    cost: ClassVar[str] = "free"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = (
        "The answer cites a source that was never retrieved, or one whose text does not contain "
        "the numbers and content words of the sentence citing it."
    )
    score_meaning: ClassVar[str] = (
        "Per citation: 1.0 when the source was not retrieved; else 1 - support of the citing "
        "sentence by the cited text (share of content words, averaged with the share of "
        "numbers when there are numbers). Flagged at or above the threshold."
    )
    paper: ClassVar[str] = (
        "Enabling Large Language Models to Generate Text with Citations (Gao et al. 2023, ALCE): "
        "citation recall and precision"
    )

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        """Check each citation of each answer."""
        trail = Trail.from_detail(context.detail)
        by_id: dict[str, list[Seen]] = {}
        for doc in trail.documents:
            if doc.doc_id is not None:
                by_id.setdefault(str(doc.doc_id), []).append(doc)
        results: list[CheckResult] = []
        checked = 0
        top = 0.0
        for entry in trail.entries:
            if entry.type != "ANSWER":
                continue
            for cited, citing in _citations(entry):
                checked += 1
                docs = _resolve(cited, by_id, trail.documents)
                if not docs:
                    top = 1.0
                    if threshold <= 1.0:
                        results.append(_not_retrieved(entry, cited, by_id, threshold))
                    continue
                score, sentence, doc = _support(citing, docs, entry, by_id, trail.documents)
                top = max(top, score)
                if score >= threshold:
                    results.append(
                        _unsupported(
                            entry,
                            cited=cited,
                            sentence=sentence,
                            doc=doc,
                            score=score,
                            threshold=threshold,
                        )
                    )
        if results:
            return results
        if checked == 0:
            return [
                CheckResult(
                    status="inconclusive",
                    message="the answer cites no source",
                    threshold=threshold,
                )
            ]
        return [
            CheckResult(
                status="passed",
                message=f"each of the {checked} citations names a retrieved source that "
                "contains the cited content",
                score=top,
                threshold=threshold,
                evidence={"citations_checked": checked},
            )
        ]


def _citations(entry: TrailEntry) -> list[tuple[str, list[str]]]:
    """(cited id, sentences citing it) of one answer, in order of first mention."""
    parts = sentences(entry.text)
    cited: dict[str, list[str]] = {}
    for sentence in parts:
        for marker in _MARKER.findall(sentence):
            if not any(ch.isdigit() for ch in marker):
                continue
            cited.setdefault(marker, []).append(sentence)
    for citation in entry.citations:
        if citation not in cited:
            cited[citation] = parts or [entry.text]
    return list(cited.items())


def _resolve(cited: str, by_id: dict[str, list[Seen]], documents: list[Seen]) -> list[Seen]:
    if cited in by_id:
        return by_id[cited]
    if cited.isdigit() and 1 <= int(cited) <= len(documents):
        return [documents[int(cited) - 1]]
    return []


def _support(
    citing: list[str],
    docs: list[Seen],
    entry: TrailEntry,
    by_id: dict[str, list[Seen]],
    documents: list[Seen],
) -> tuple[float, str, Seen]:
    """(score, sentence, document) for the best-supported sentence citing ``docs``."""
    best: tuple[float, str, Seen] | None = None
    for sentence in citing:
        # A sentence citing several sources is supported by all of them together.
        texts = [doc.text for doc in docs]
        for marker in _MARKER.findall(sentence):
            texts.extend(doc.text for doc in _resolve(marker, by_id, documents))
        source = "\n".join(texts)
        plain = strip_citations(sentence)
        words = content_words(plain)
        word_share = len(words & content_words(source)) / len(words) if words else 1.0
        numbers = extract_numbers(plain)
        if numbers:
            values = [mention.value for mention in extract_numbers(source)]
            found = sum(1 for number in numbers if find_number(number, values)[0] == "match")
            support = 0.5 * word_share + 0.5 * found / len(numbers)
        else:
            support = word_share
        score = round(1.0 - support, 4)
        if best is None or score < best[0]:
            best = (score, sentence, docs[0])
    assert best is not None
    return best


def _not_retrieved(
    entry: TrailEntry, cited: str, by_id: dict[str, list[Seen]], threshold: float
) -> CheckResult:
    known = sorted(by_id)
    return CheckResult(
        status="flagged",
        message=(
            f"the answer cites {cited!r}, but no retrieval in this trace returned a source with "
            "that id"
        ),
        score=1.0,
        threshold=threshold,
        evidence={
            "claim": entry.text[:600],
            "found": cited,
            "expected": ", ".join(known[:20]) if known else "no source was retrieved",
        },
        step=entry.step,
    )


def _unsupported(
    entry: TrailEntry, *, cited: str, sentence: str, doc: Seen, score: float, threshold: float
) -> CheckResult:
    evidence: dict[str, object] = {
        "claim": sentence[:600],
        "found": cited,
        "observation": doc.text[:600],
    }
    if doc.step is not None:
        evidence["observation_step"] = {"span_id": doc.step[0], "seq": doc.step[1]}
    return CheckResult(
        status="flagged",
        message=(
            f"the sentence citing {cited!r} is not supported by that source: "
            f"{round((1 - score) * 100)}% of its content is found there"
        ),
        score=score,
        threshold=threshold,
        evidence=evidence,
        step=entry.step,
    )
