"""The built-in trace-only checks: they read the recorded trace and need no model.

Importing this package registers them: ``observation_grounding``, ``plan_action_consistency``,
``citation_grounding`` and ``evidence_ignored``.
"""

from lucidtrace.probes.checks.trace_checks.citation_grounding import CitationGrounding
from lucidtrace.probes.checks.trace_checks.evidence_ignored import EvidenceIgnored
from lucidtrace.probes.checks.trace_checks.observation_grounding import ObservationGrounding
from lucidtrace.probes.checks.trace_checks.plan_action import PlanActionConsistency

__all__ = [
    "CitationGrounding",
    "EvidenceIgnored",
    "ObservationGrounding",
    "PlanActionConsistency",
]
