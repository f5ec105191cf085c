"""Flattened list indices (OpenInference, legacy GenAI): a bad index costs its own key only."""

from __future__ import annotations

from typing import Any

import pytest

from lucidtrace.store._conventions import indexed
from tests.unit.store.test_mapper_conventions import derive, problems, trail

OI = {
    "openinference.span.kind": "LLM",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "Thought: look\nFinal Answer: 42",
}
BAD_INDICES = ["9" * 5000, "\u0663", "-1", "x", "1" * 21, ""]


@pytest.mark.parametrize("index", BAD_INDICES, ids=["long", "arabic", "negative", "x", "21", ""])
def test_openinference_bad_index_keeps_the_other_messages(index: str) -> None:
    item = derive({**OI, f"llm.output_messages.{index}.message.content": "Final Answer: bad"})
    assert trail(item) == [
        ("THOUGHT", "look", None, None, None),
        ("ANSWER", "42", None, None, None),
    ]
    assert any("llm.output_messages." in p and "skipped" in p for p in problems(item))


@pytest.mark.parametrize("index", BAD_INDICES, ids=["long", "arabic", "negative", "x", "21", ""])
def test_legacy_bad_index_keeps_the_other_completions(index: str) -> None:
    item = derive(
        {
            f"gen_ai.completion.{index}.content": "Final Answer: bad",
            "gen_ai.completion.0.content": "Final Answer: zero",
        }
    )
    assert [(s["type"], s["text"]) for s in item.steps] == [("ANSWER", "zero")]
    assert any("gen_ai.completion." in p and "skipped" in p for p in problems(item))


def test_indexed_orders_ascii_indices_and_lists_the_rest() -> None:
    attrs: dict[str, Any] = {
        "p.10.a": 3,
        "p.2.a": 2,
        "p.99999999999999999999.a": 4,
        "p.0.a": 1,
        "p.\u0661.a": "arabic one",
        "p.1": "no field",
        "q.0.a": "other prefix",
    }
    found: list[str] = []
    assert indexed(attrs, "p.", found) == [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]
    assert len(found) == 2
    assert indexed(attrs, "p.") == [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]
