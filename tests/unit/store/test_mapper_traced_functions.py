"""Traced functions read like the explicit tracer calls in the audit trail."""

from __future__ import annotations

import json

import lucidtrace as lt
from lucidtrace.tracer.testing import capture


@lt.traced(kind="tool")
def add(a: int, b: int) -> int:
    return a + b


@lt.traced(kind="tool")
def log_only(message: str) -> None:
    del message


def test_a_traced_tool_function_is_an_action_with_args_and_an_observation() -> None:
    @lt.traced(kind="agent")
    def agent() -> str:
        return lt.answer(f"The sum is {add(2, 3)}.")

    with capture() as trace:
        agent()
    steps = [(s["type"], s["tool_name"], s["tool_args"], s["text"]) for s in trace.steps]
    assert steps == [
        ("ACTION", "add", '{"a": 2, "b": 3}', None),
        ("OBSERVATION", None, None, "5"),
        ("ANSWER", None, None, "The sum is 5."),
    ]


def test_a_tool_that_returns_nothing_has_no_observation_text_invented() -> None:
    with capture() as trace:
        log_only("hello")
    assert [(s["type"], s["text"]) for s in trace.steps] == [("ACTION", None)]


def test_an_agent_that_returns_none_gives_no_answer() -> None:
    @lt.traced(kind="agent")
    def silent_agent() -> None:
        lt.thought("Nothing to say.")

    @lt.traced(kind="agent")
    def speaking_agent() -> str:
        return "Forty-two."

    with capture() as trace:
        silent_agent()
        speaking_agent()
    assert [(s["type"], s["text"]) for s in trace.steps] == [
        ("THOUGHT", "Nothing to say."),
        ("ANSWER", "Forty-two."),
    ]


def test_a_react_final_answer_in_model_output_keeps_its_citations() -> None:
    react = "Thought: The search result answers it.\nFinal Answer: About 387,758 people [doc-3]."
    output = [{"role": "assistant", "parts": [{"type": "text", "content": react}]}]
    with capture() as trace, lt.span("chat", kind="llm") as llm:
        llm.set_attribute("gen_ai.output.messages", json.dumps(output))
    assert [(s["type"], s["citations"]) for s in trace.steps] == [
        ("THOUGHT", []),
        ("ANSWER", ["doc-3"]),
    ]
