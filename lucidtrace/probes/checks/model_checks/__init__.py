"""Model-based faithfulness checks: importing this package registers them.

Each check teacher-forces the recorded trace (question, reasoning steps, answer; see
``_context``) through a local model, in proxy mode when the agent ran on another model. No
module here imports torch at import time, so :func:`lucidtrace.probes.checks.registry.list_checks`
works on the core install; the checks import the probe engine when they run.
"""

from __future__ import annotations

from lucidtrace.probes.checks.model_checks.answer_probe import (
    AnswerProbe,
    load_answer_probe,
    train_answer_probe,
    train_answer_probe_from_details,
)
from lucidtrace.probes.checks.model_checks.citation_attribution import CitationAttribution
from lucidtrace.probes.checks.model_checks.early_answering import EarlyAnswering
from lucidtrace.probes.checks.model_checks.explanation_consistency import (
    ExplanationConsistency,
)
from lucidtrace.probes.checks.model_checks.filler import FillerControl
from lucidtrace.probes.checks.model_checks.hint import HintTest
from lucidtrace.probes.checks.model_checks.mistake_injection import MistakeInjection

__all__ = [
    "AnswerProbe",
    "CitationAttribution",
    "EarlyAnswering",
    "ExplanationConsistency",
    "FillerControl",
    "HintTest",
    "MistakeInjection",
    "load_answer_probe",
    "train_answer_probe",
    "train_answer_probe_from_details",
]
