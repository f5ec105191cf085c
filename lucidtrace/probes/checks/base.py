"""The check interface: what every faithfulness check declares and returns.

A check reads one recorded trace (its audit trail, documents and spans, as a
:class:`~lucidtrace.store.repository.TraceDetail`) and, for model-based checks, a local model,
and returns :class:`CheckResult` objects. The runner stores each result as a ``findings`` row
(with the model identity and the ``proxy`` mark) and its attribution maps as ``attributions``
rows; the trace's verdict follows from its findings (flagged when any finding is flagged).

Nothing here imports torch: trace-only checks run on the core install.

Evidence conventions (the web UI renders these keys specially; any other key is shown as a
escaped key/value table):

* ``claim``: the quoted text of the step or answer that the finding is about.
* ``observation``: the recorded tool output or document text the claim is compared with.
* ``observation_step``: ``{"span_id": ..., "seq": ...}`` of that observation's step.
* ``expected`` / ``found``: short values (a number, a tool name, an argument).
* ``curve``: ``{"x": [...], "y": [...], "x_label": str, "y_label": str}`` (e.g. the
  truncation curve: fraction of reasoning kept vs. probability of the final answer).
* ``segments``: ``{segment name: total attribution}`` of the main attribution map.
* ``paper``: the work the check follows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lucidtrace.store.repository import TraceDetail

__all__ = [
    "ACCESS_LEVELS",
    "COSTS",
    "FINDING_STATUSES",
    "Check",
    "CheckContext",
    "CheckResult",
    "SavedAttribution",
]

ACCESS_LEVELS = ("trace", "logits", "gradients", "hidden_states", "regeneration")
"""What a check needs, cheapest first: the recorded trace only, next-token logits of a local
model, its gradients, its hidden states, or generating new text with it."""

COSTS = ("free", "forward", "backward", "generate", "train")
"""Rough cost of one run, cheapest first: no model; a few forward passes; backward passes;
generation; training a probe."""

FINDING_STATUSES = ("flagged", "passed", "inconclusive", "error")
"""What a finding says: evidence of unfaithfulness was found, the check passed, the check could
not decide (e.g. nothing to check), or the check failed to run (the error is the message)."""


@dataclass(frozen=True)
class SavedAttribution:
    """An attribution map a check used, stored with its finding.

    ``data`` is :meth:`lucidtrace.probes.AttributionResult.to_dict` (or the same keys: method,
    target, tokens, scores, segments as a list of ``{"name", "total", ...}``).
    """

    method: str
    target: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class CheckResult:
    """One finding, before it is stored.

    Attributes:
        status: One of :data:`FINDING_STATUSES`.
        message: One sentence a person can check, worded as evidence ("the stated reasoning is
            not supported by ..."), never as an accusation.
        score: The check's raw value (its meaning is the check's ``score_meaning``).
        threshold: The threshold the score was compared with.
        evidence: JSON-ready details (see the module docstring for the conventions).
        step: ``(span_id, seq)`` of the step the finding concerns, or ``None`` for the trace.
        attributions: Attribution maps the check used.
    """

    status: str
    message: str
    score: float | None = None
    threshold: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    step: tuple[str, int] | None = None
    attributions: Sequence[SavedAttribution] = ()

    def __post_init__(self) -> None:
        if self.status not in FINDING_STATUSES:
            raise ValueError(
                f"unknown finding status {self.status!r}: use one of {FINDING_STATUSES}"
            )


@dataclass
class CheckContext:
    """What a check run sees.

    Attributes:
        detail: The trace with its spans, steps (reading order), documents and findings.
        model: A :class:`lucidtrace.probes.LoadedModel` for model-based checks, else ``None``.
        proxy: True when ``model`` is not the model the agent ran on (the recorded text is
            teacher-forced through a local stand-in); every finding then says so.
        options: Per-check options from the caller (``{check name: {option: value}}``).
        cache: Shared between the checks of one run on one trace (e.g. a rendered prompt).
    """

    detail: TraceDetail
    model: Any = None
    proxy: bool = False
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Check(Protocol):
    """A faithfulness check.

    Class attributes declare what it is; :meth:`run` does the work. A check never raises for a
    trace it cannot judge: it returns an ``inconclusive`` result saying why. An exception
    escaping :meth:`run` is recorded by the runner as an ``error`` finding.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    access: ClassVar[str]
    cost: ClassVar[str]
    default_threshold: ClassVar[float]
    description: ClassVar[str]
    score_meaning: ClassVar[str]
    paper: ClassVar[str]

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        """Judge one trace; one or more results (e.g. one per claim)."""
        ...
