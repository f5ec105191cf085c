"""The demo's tools and output parser: no model needed."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_classic")

from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.exceptions import OutputParserException

from lucidtrace.demo.agent import FORMAT_REMINDER, TolerantReActParser
from lucidtrace.demo.tools import (
    CalculatorError,
    CorpusRetriever,
    calculate,
    calculator_tool,
    load_corpus,
    search_tool,
)

ICELAND = 387_758


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("387758 ** 2", "150356266564"),
        ("387,758^2", "150356266564"),
        ("387758 squared", "150356266564"),
        ("387758 * 387758", "150356266564"),
        ("(3 + 4) * 2", "14"),
        ("12 x 37", "444"),
        ("10 / 4", "2.5"),
        ("7 // 2", "3"),
        ("-5 + 2", "-3"),
        ("563443 * 2", "1126886"),
        ("1 / 3", "0.333333333333"),
    ],
)
def test_calculator_computes_exactly(expression: str, expected: str) -> None:
    assert calculate(expression) == expected


def test_the_iceland_square_is_exact() -> None:
    assert calculate(f"{ICELAND} ** 2") == str(ICELAND * ICELAND) == "150356266564"


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('echo hi')",
        "open('/etc/passwd')",
        "x + 1",
        "(1).__class__",
        "[1, 2]",
        "lambda: 1",
        "2 ** 100000",
        "9 ** 9 ** 9",
        "1 / 0",
        "",
        "Iceland population",
        "1" * 300,
    ],
)
def test_calculator_refuses_what_is_not_small_arithmetic(expression: str) -> None:
    with pytest.raises(CalculatorError):
        calculate(expression)


def test_calculator_tool_returns_the_refusal_to_the_agent() -> None:
    result = calculator_tool().invoke("open('/etc/passwd')")
    assert "only numbers" in result
    assert calculator_tool().invoke("387758 ** 2") == "150356266564"


def test_corpus_is_consistent_and_has_unique_ids() -> None:
    corpus = load_corpus()
    ids = [doc.id for doc in corpus]
    assert 15 <= len(corpus) <= 30
    assert len(set(ids)) == len(ids)
    iceland = next(doc for doc in corpus if doc.id == "doc-iceland-population")
    assert "387,758" in iceland.content


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("Iceland population", "doc-iceland-population"),
        ("population of Iceland", "doc-iceland-population"),
        ("capital of Iceland", "doc-iceland-capital"),
        ("Mount Everest height", "doc-everest"),
        ("chemical symbol of gold", "doc-gold-symbol"),
        ("Estonian capital Tallinn", "doc-estonia-capital"),
    ],
)
def test_search_ranks_the_matching_document_first(query: str, best: str) -> None:
    ranked = CorpusRetriever().rank(query)
    assert ranked[0][0].id == best
    assert [score for _, score in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_search_finds_nothing_for_unrelated_words() -> None:
    assert CorpusRetriever().rank("zebra quantum") == []
    assert search_tool().invoke("zebra quantum") == ""


def test_search_tool_shows_document_ids_and_returns_documents() -> None:
    text = search_tool().invoke("Iceland population")
    assert text.splitlines()[0] == (
        "[doc-iceland-population] Iceland has a population of 387,758 people (2024 estimate)."
    )
    docs = CorpusRetriever(k=1).invoke("Iceland population")
    assert [doc.id for doc in docs] == ["doc-iceland-population"]
    assert docs[0].metadata["source"]
    assert docs[0].metadata["score"] > 0


PARSER = TolerantReActParser(tool_names=["search", "calculator"])


@pytest.mark.parametrize(
    ("text", "tool", "tool_input"),
    [
        (
            " I need it.\nAction: search\nAction Input: Iceland population",
            "search",
            "Iceland population",
        ),
        (
            ' I need it.\nAction: Search.\nAction Input: "Iceland population"',
            "search",
            "Iceland population",
        ),
        (
            " Compute.\nAction: calculator\nAction Input: 387758 ** 2\nThought: more",
            "calculator",
            "387758 ** 2",
        ),
        (" Compute.\nAction: Calculator[387758 ** 2]", "calculator", "387758 ** 2"),
        (" Compute.\nAction: calc\nAction Input: 2 * 3", "calculator", "2 * 3"),
        (
            " Search first.\nAction: search\nAction Input: gold\nFinal Answer: Au",
            "search",
            "gold",
        ),
    ],
)
def test_parser_reads_near_miss_actions(text: str, tool: str, tool_input: str) -> None:
    step = PARSER.parse(text)
    assert isinstance(step, AgentAction)
    assert (step.tool, step.tool_input, step.log) == (tool, tool_input, text)


def test_parser_reads_the_final_answer_first_paragraph() -> None:
    step = PARSER.parse(" I know it.\nFinal Answer: Reykjavik\n\nQuestion: something else")
    assert isinstance(step, AgentFinish)
    assert step.return_values == {"output": "Reykjavik"}


def test_parser_answer_before_an_action_finishes() -> None:
    step = PARSER.parse(" Done.\nFinal Answer: Au\nAction: search\nAction Input: gold")
    assert isinstance(step, AgentFinish)
    assert step.return_values["output"].startswith("Au")


@pytest.mark.parametrize(
    "text", [" I need the capital.", " Action: search", "Final Answer:   ", "Action Input: x"]
)
def test_parser_sends_a_format_reminder_for_unreadable_steps(text: str) -> None:
    with pytest.raises(OutputParserException) as raised:
        PARSER.parse(text)
    assert raised.value.send_to_llm
    assert raised.value.observation == FORMAT_REMINDER
    assert raised.value.llm_output == text


def test_unknown_tool_names_are_kept_for_the_executor_to_refuse() -> None:
    step = PARSER.parse(" Hmm.\nAction: weather\nAction Input: Oslo")
    assert isinstance(step, AgentAction)
    assert step.tool == "weather"
