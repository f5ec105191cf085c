"""lucidtrace.tracer.testing: the capture users write their own tests with."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lucidtrace as lt
from lucidtrace.tracer.testing import capture


@lt.traced(kind="agent")
def run(question: str) -> str:
    lt.thought("I need Iceland's population, then its square.")
    with lt.tool_call("search", {"query": "Iceland population"}) as call:
        call.set_result("Iceland has 387,758 inhabitants.")
    lt.retrieval(
        "Iceland population",
        documents=[{"id": "doc-3", "content": "...", "score": 0.91, "source": "wiki"}],
    )
    return lt.answer("About 387,758 people [doc-3].", cites=["doc-3"])


def test_capture_gives_spans_and_the_audit_trail_in_order() -> None:
    with capture() as trace:
        run("How many people live in Iceland?")
        assert len(trace.spans) == 3  # readable inside the block too
    assert sorted(s.name for s in trace.spans) == ["execute_tool search", "retrieval", "run"]
    steps = trace.steps
    assert [s["type"] for s in steps] == ["THOUGHT", "ACTION", "OBSERVATION", "RETRIEVAL", "ANSWER"]
    assert steps[0]["text"] == "I need Iceland's population, then its square."
    assert steps[1]["tool_name"] == "search"
    assert "Iceland population" in (steps[1]["tool_args"] or "")
    assert "387,758" in (steps[2]["text"] or "")
    assert steps[4]["citations"] == ["doc-3"]


def test_capture_masks_like_the_real_pipeline_and_clear_forgets() -> None:
    with capture() as trace:
        lt.thought("key sk-proj-abcdefghijklmnopqrstuvwxyz")
        assert "[REDACTED:openai-key]" in str(trace.span_named("reasoning").events[0].attributes)
        trace.clear()
        assert trace.spans == []
    with pytest.raises(LookupError, match="0 spans named 'reasoning'"):
        trace.span_named("reasoning")


def test_capture_restores_the_previous_configuration() -> None:
    outer = InMemorySpanExporter()
    lt.configure(exporter=outer)
    with lt.span("before"):
        pass
    with capture() as trace, lt.span("inside"):
        pass
    with lt.span("after"):
        pass
    assert lt.flush()
    assert [s.name for s in trace.spans] == ["inside"]
    assert [s.name for s in outer.get_finished_spans()] == ["before", "after"]


def test_capture_when_unconfigured_leaves_it_unconfigured() -> None:
    with capture():
        pass
    assert lt.get_stats().enabled is False
