"""Checks registered by the tests: one that fails, one that needs a model, one with maps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from lucidtrace.probes.checks import CheckContext, CheckResult, SavedAttribution, register_check
from lucidtrace.probes.checks.registry import unregister_check


@dataclass(frozen=True)
class Identity:
    """The identity fields the runner stores (``LoadedModel.identity`` has the same)."""

    name: str
    weights_hash: str


@dataclass
class StandInModel:
    """A model object as the runner sees it: checks that need a model read its identity."""

    identity: Identity


class FailingCheck:
    """Raises on every run."""

    name: ClassVar[str] = "test_failing"
    version: ClassVar[str] = "1"
    access: ClassVar[str] = "trace"
    cost: ClassVar[str] = "free"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = "always fails"
    score_meaning: ClassVar[str] = "none"
    paper: ClassVar[str] = "none"

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        raise RuntimeError("probe exploded on purpose")


class ModelCheck:
    """Needs a model; flags when the threshold is below 0.7 and stores an attribution map."""

    name: ClassVar[str] = "test_model_check"
    version: ClassVar[str] = "2"
    access: ClassVar[str] = "logits"
    cost: ClassVar[str] = "forward"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = "reads the model's identity"
    score_meaning: ClassVar[str] = "0.7 always"
    paper: ClassVar[str] = "none"
    runs: ClassVar[list[tuple[str, str]]] = []
    delay: ClassVar[float] = 0.0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        model: Any = context.model
        with self.lock:
            self.runs.append((context.detail.trace.trace_id, threading.current_thread().name))
        if self.delay:
            time.sleep(self.delay)
        score = 0.7
        return [
            CheckResult(
                status="flagged" if score >= threshold else "passed",
                message=f"the answer is not supported by its reasoning on {model.identity.name}",
                score=score,
                threshold=threshold,
                evidence={"segments": {"question": 0.2, "thought 1": 0.8}},
                attributions=[
                    SavedAttribution(
                        method="occlusion",
                        target="answer",
                        data={
                            "tokens": ["a", "b"],
                            "scores": [0.25, 0.75],
                            "segments": [{"name": "question", "total": 0.25}],
                        },
                    )
                ],
            )
        ]


@contextmanager
def registered(*classes: type) -> Iterator[None]:
    """Register test checks for the duration of a block."""
    for cls in classes:
        register_check(cls)
    try:
        yield
    finally:
        for cls in classes:
            unregister_check(cls.name)  # type: ignore[attr-defined]


class MalformedCheck:
    """Returns a result whose score is no number."""

    name: ClassVar[str] = "test_malformed"
    version: ClassVar[str] = "1"
    access: ClassVar[str] = "trace"
    cost: ClassVar[str] = "free"
    default_threshold: ClassVar[float] = 0.5
    description: ClassVar[str] = "returns a score that is text"
    score_meaning: ClassVar[str] = "none"
    paper: ClassVar[str] = "none"

    def run(self, context: CheckContext, *, threshold: float) -> list[CheckResult]:
        return [CheckResult(status="passed", message="fine", score="high", threshold=threshold)]  # type: ignore[arg-type]
