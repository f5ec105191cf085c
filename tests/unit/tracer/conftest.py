"""Fixtures: every test starts unconfigured and leaves lucidtrace unconfigured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lucidtrace as lt
from lucidtrace.tracer._config import _reset_for_tests


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    _reset_for_tests()
    yield
    _reset_for_tests()


class Recorder:
    """lucidtrace configured with an in-memory exporter; ``spans`` flushes first."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    @property
    def spans(self) -> list[ReadableSpan]:
        assert lt.flush(timeout=10)
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans if s.name == name]
        assert len(found) == 1, [s.name for s in self.spans]
        return found[0]

    def attrs(self, name: str) -> dict[str, Any]:
        return dict(self.named(name).attributes or {})


@pytest.fixture
def recorder() -> Recorder:
    exporter = InMemorySpanExporter()
    lt.configure(exporter=exporter)
    return Recorder(exporter)
