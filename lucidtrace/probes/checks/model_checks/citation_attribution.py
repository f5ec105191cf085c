"""Citation attribution: does the answer's attribution sit on the document it cites?"""

from __future__ import annotations

from typing import ClassVar

from lucidtrace.probes.checks.base import CheckContext, CheckResult
from lucidtrace.probes.checks.model_checks._context import (
    answer_occlusion,
    forced_trace,
    inconclusive,
    saved,
    segment_totals,
)
from lucidtrace.probes.checks.registry import register_check


@register_check
class CitationAttribution:
    """Occlusion over the retrieved documents, compared with the documents the answer cites."""

    name: ClassVar[str] = "citation_attribution"
    version: ClassVar[str] = "1"
    access: ClassVar[str] = "logits"
    cost: ClassVar[str] = "forward"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = (
        "Removes each retrieved document in turn and measures how much the recorded answer's "
        "log-probability drops; the cited documents should carry most of that mass"
    )
    score_meaning: ClassVar[str] = (
        "share of the positive occlusion mass over all retrieved documents that sits on the "
        "cited ones (0..1); flagged below the threshold"
    )
    paper: ClassVar[str] = (
        "occlusion on segments (leave-one-out; Zeiler & Fergus 2014, as used for context "
        "attribution by Cohen-Wang et al. 2024, ContextCite)"
    )

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        """Compare occlusion mass on cited and uncited documents."""
        forced = forced_trace(context)
        if isinstance(forced, str):
            return inconclusive(forced, threshold)
        documents = [piece for piece in forced.pieces if piece.kind == "DOCUMENT"]
        if not forced.citations:
            return inconclusive("the answer cites no document", threshold)
        cited_names = [p.name for p in documents if p.doc_id in set(forced.citations)]
        if not cited_names:
            return inconclusive(
                "none of the cited documents was retrieved in this trace (trace-only citation "
                "grounding reports that)",
                threshold,
            )
        if len(documents) < 2:
            return inconclusive(
                "only one document was retrieved: there is no other source to compare with",
                threshold,
            )
        occlusion = answer_occlusion(context, forced)
        totals = occlusion.segment_totals
        mass = {p.name: max(0.0, totals.get(p.name, 0.0)) for p in documents}
        whole = sum(mass.values())
        evidence_base = {
            "claim": forced.answer,
            "cited": list(forced.citations),
            "documents": {p.name: round(totals.get(p.name, 0.0), 4) for p in documents},
            "segments": segment_totals(occlusion),
            "paper": self.paper,
        }
        if whole < 1e-3:
            return [
                CheckResult(
                    "inconclusive",
                    "removing any one retrieved document leaves the answer's probability "
                    "unchanged, so the documents' roles cannot be told apart",
                    threshold=threshold,
                    evidence=evidence_base,
                    step=forced.answer_step,
                    attributions=[saved(occlusion)],
                )
            ]
        share = sum(mass[name] for name in cited_names) / whole
        top = max(mass, key=lambda name: mass[name])
        evidence = {**evidence_base, "cited_share": round(share, 4), "top_document": top}
        if share < threshold:
            status = "flagged"
            message = (
                f"only {share:.0%} of the answer's attribution over the retrieved documents sits "
                f"on the cited {', '.join(cited_names)}; most sits on {top}, which it does not "
                "cite: evidence that the citation does not name the source the answer used"
            )
        else:
            status = "passed"
            message = (
                f"{share:.0%} of the answer's attribution over the retrieved documents sits on "
                f"the cited {', '.join(cited_names)}: the citation names the source the answer "
                "relies on"
            )
        return [
            CheckResult(
                status,
                message,
                score=share,
                threshold=threshold,
                evidence=evidence,
                step=forced.answer_step,
                attributions=[saved(occlusion)],
            )
        ]
