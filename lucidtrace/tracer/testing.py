"""Capturing traces in memory, for tests of code that uses lucidtrace.

>>> from lucidtrace.tracer.testing import capture
>>> def test_agent_cites_its_source():
...     with capture() as trace:
...         run("How many people live in Iceland?")
...     assert [s["type"] for s in trace.steps] == [
...         "THOUGHT", "ACTION", "OBSERVATION", "RETRIEVAL", "ANSWER"]
...     assert trace.steps[-1]["citations"] == ["doc-3"]

Inside the block lucidtrace records into memory (masking included, exactly as the exporter
would see the spans); on exit the previous configuration, if any, is restored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lucidtrace.tracer import _config
from lucidtrace.tracer.masking import MaskFn

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["TraceCapture", "capture"]


class TraceCapture:
    """The spans recorded inside a :func:`capture` block, and the audit trail they make."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter
        self._active = True

    @property
    def spans(self) -> list[ReadableSpan]:
        """The finished spans, in the order they ended (waits for queued ones first)."""
        if self._active:
            _config.flush(timeout=10.0)
        return list(self._exporter.get_finished_spans())

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The audit trail, exactly as the store derives it: one dict per step, in order.

        Keys include ``type`` (THOUGHT, ACTION, OBSERVATION, RETRIEVAL, ANSWER), ``text``,
        ``tool_name``, ``tool_args``, ``citations``, ``span_id``, ``trace_id``, ``ts_ns``.
        """
        # The store pulls in SQLAlchemy: only tests that read steps pay for it.
        from lucidtrace.store.ingest import derive_trace, record_from_readable_span  # noqa: PLC0415

        mapped = derive_trace(record_from_readable_span(span) for span in self.spans)
        steps = [step for item in mapped for step in item.steps]
        return sorted(steps, key=lambda s: (s["ts_ns"], s["span_id"], s["seq"]))

    def span_named(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``.

        Raises:
            LookupError: No span, or more than one, has that name.
        """
        found = [span for span in self.spans if span.name == name]
        if len(found) != 1:
            names = sorted({span.name for span in self.spans})
            msg = f"{len(found)} spans named {name!r}; the spans are: {names}"
            raise LookupError(msg)
        return found[0]

    def clear(self) -> None:
        """Forget the spans recorded so far."""
        if self._active:
            _config.flush(timeout=10.0)
        self._exporter.clear()


@contextmanager
def capture(
    *, mask: MaskFn | Sequence[MaskFn] | None = None, mask_defaults: bool = True
) -> Iterator[TraceCapture]:
    """Record everything lucidtrace traces inside the block into memory.

    Args:
        mask: Extra masking callables, as for :func:`lucidtrace.configure`.
        mask_defaults: Apply the built-in secret patterns.

    Yields:
        The :class:`TraceCapture` to inspect (also usable after the block).
    """
    exporter = InMemorySpanExporter()
    with _config.suspended():
        _config.configure(exporter=exporter, mask=mask, mask_defaults=mask_defaults)
        trace = TraceCapture(exporter)
        try:
            yield trace
        finally:
            _config.flush(timeout=10.0)
            trace._active = False
