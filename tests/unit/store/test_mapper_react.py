"""ReAct text parsing: well-formed and sloppy small-model output."""

from __future__ import annotations

import json

import pytest

from lucidtrace.store._react import ReactStep, parse_react, split_think


def test_bracket_action() -> None:
    assert parse_react("Thought: I need the population.\nAction: search[Iceland population]") == [
        ReactStep("THOUGHT", "I need the population."),
        ReactStep("ACTION", tool_name="search", tool_args="Iceland population"),
    ]


def test_action_input_with_json_in_a_code_fence() -> None:
    text = (
        "Thought: I should compute it.\n"
        "Action: calculator\n"
        'Action Input:\n```json\n{"expression": "387758 ** 2"}\n```'
    )
    steps = parse_react(text)
    assert [s.type for s in steps] == ["THOUGHT", "ACTION"]
    assert steps[1].tool_name == "calculator"
    assert json.loads(steps[1].tool_args or "") == {"expression": "387758 ** 2"}


@pytest.mark.parametrize(
    "text",
    [
        "thought:I need it\naction:search[x]",
        "THOUGHT :  I need it\nACTION :search[x]",
        "**Thought:** I need it\n**Action:** search[x]",
        "Thought 1: I need it\nAction 1: search[x]",
        "I need it\nAction: search[x]",  # the prompt ended with "Thought:"
    ],
)
def test_sloppy_keywords(text: str) -> None:
    assert parse_react(text) == [
        ReactStep("THOUGHT", "I need it"),
        ReactStep("ACTION", tool_name="search", tool_args="x"),
    ]


def test_multi_line_thought_observation_and_final_answer() -> None:
    text = (
        "Thought: First line\nsecond line of the same thought\n"
        "Action: Search[Iceland]\n"
        "Observation: 387,758\n"
        "Thought: Now I know.\n"
        "Final Answer: About 387,758 people."
    )
    assert parse_react(text) == [
        ReactStep("THOUGHT", "First line\nsecond line of the same thought"),
        ReactStep("ACTION", tool_name="Search", tool_args="Iceland"),
        ReactStep("OBSERVATION", "387,758"),
        ReactStep("THOUGHT", "Now I know."),
        ReactStep("ANSWER", "About 387,758 people."),
    ]


def test_final_answer_as_an_action() -> None:
    assert parse_react("Action: Final Answer\nAction Input: 42") == [ReactStep("ANSWER", "42")]


def test_think_blocks_including_a_missing_opening_tag() -> None:
    assert split_think("<think>a</think> b <think>c</think>") == (["a", "c"], "b")
    assert split_think("reasoning first</think>\nThe answer") == (["reasoning first"], "The answer")
    assert parse_react("<think>hmm</think>Final Answer:7") == [
        ReactStep("THOUGHT", "hmm"),
        ReactStep("ANSWER", "7"),
    ]


def test_plain_text_has_no_steps() -> None:
    assert parse_react("Paris is the capital of France.") == []
    assert parse_react("") == []
