"""Real finished SDK spans for the export tests."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def make_spans(count: int, *, prefix: str = "step", payload: str = "") -> list[ReadableSpan]:
    """``count`` finished spans named ``{prefix}-{i}``, one trace, each with ``payload``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span(f"{prefix}-root"):
        for index in range(count - 1):
            with tracer.start_as_current_span(f"{prefix}-{index}") as span:
                span.set_attribute("lucidtrace.input", payload)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans
