"""Full-text search: query syntax, index kept in step with the rows, snippets, query plans."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.store import (
    count_traces,
    delete_trace,
    list_traces,
    parse_query,
    search_steps,
)
from lucidtrace.store import search as search_module
from lucidtrace.store.models import Step, Trace
from lucidtrace.store.search import snippet
from tests.query.plans import query_plan
from tests.query.traces import agent_trace, store


def _names(rows: list) -> list[str | None]:  # type: ignore[type-arg]
    return [row.name for row in rows]


def test_parse_query_words_and_phrases() -> None:
    assert parse_query('Paris "capital of"  France') == [["paris"], ["capital", "of"], ["france"]]
    assert parse_query("foo.bar") == [["foo", "bar"]]
    assert parse_query("AND ( NEAR( * ^ -") == [["and"], ["near"]]
    assert parse_query('" AND ( NEAR(') == [["and", "near"]]  # an open quote runs to the end
    assert parse_query('"unclosed phrase') == [["unclosed", "phrase"]]
    assert parse_query("") == []


@pytest.fixture(params=["collect", "walk"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both plans of a trace search: collect the few matches, or walk the list (many)."""
    if request.param == "walk":
        monkeypatch.setattr(search_module, "FEW_MATCHES", 0)
    return str(request.param)


@pytest.fixture
def searchable(engine: sa.Engine, strategy: str) -> dict[str, str]:
    return {
        "atlas": store(
            engine,
            agent_trace(
                name="atlas",
                thought="I will consult the Atlas of Europe first.",
                tool_result="Paris is the capital of France.",
            ),
        ),
        "calc": store(
            engine,
            agent_trace(
                name="calc",
                start_s=5,
                question="What is six times seven?",
                thought="Use the calculator tool.",
                tool_result="42",
                answer="It is 42 (six*seven).",
            ),
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("atlas", ["atlas"]),
        ("ATLAS europe", ["atlas"]),
        ('"atlas of europe"', ["atlas"]),
        ('"europe of atlas"', []),
        ("calculator", ["calc"]),
        ("six", ["calc"]),
        ("times", ["calc"]),  # only in the trace's input
        ("42", ["calc"]),
        ("seven six", ["calc"]),  # the answer has both, as six*seven
        ("calculator atlas", []),  # every word must match
    ],
)
def test_search_finds_traces_by_steps_input_and_output(
    db: Session, searchable: dict[str, str], query: str, expected: list[str]
) -> None:
    assert _names(list_traces(db, search=query)) == expected
    assert count_traces(db, search=query) == len(expected)


@pytest.mark.parametrize("query", ['"', "AND (", "NEAR(", "*", "a OR", '"""', "-x", "col:val"])
def test_query_syntax_is_never_an_error(
    db: Session, searchable: dict[str, str], query: str
) -> None:
    list_traces(db, search=query)
    search_steps(db, query=query)


def test_a_query_without_words_matches_nothing_but_blank_is_no_filter(
    db: Session, searchable: dict[str, str]
) -> None:
    assert list_traces(db, search='"') == []
    assert search_steps(db, query="(") == []
    assert len(list_traces(db, search="   ")) == 2


def test_search_steps_gives_plain_snippets_and_trace_ids(
    db: Session, searchable: dict[str, str]
) -> None:
    matches = search_steps(db, query="calculator")
    assert [(m.trace_id, m.type, m.trace_name) for m in matches] == [
        (searchable["calc"], "THOUGHT", "calc")
    ]
    match = matches[0]
    assert match.snippet == "Use the calculator tool."
    assert [match.snippet[s:e] for s, e in match.highlights] == ["calculator"]


def test_snippet_is_cut_around_the_match_and_never_markup() -> None:
    text = "<b>x</b> " * 100 + "the needle is here " + "<i>y</i> " * 100
    shown, highlights = snippet(text, [["needle"]], width=60)
    assert shown.startswith("…")
    assert shown.endswith("…")
    assert [shown[s:e] for s, e in highlights] == ["needle"]
    assert "<b>" in shown or "<i>" in shown  # text stays as it was: escaping is the page's job
    assert len(shown) <= 62


def test_index_follows_deletes_and_reingests(
    engine: sa.Engine, db: Session, searchable: dict[str, str]
) -> None:
    # Re-ingesting the trace with another thought replaces its steps: the old words go.
    store(
        engine,
        agent_trace(
            trace_id=searchable["atlas"],
            name="atlas",
            thought="Now I read the gazetteer.",
            tool_result="Paris is the capital of France.",
        ),
    )
    assert list_traces(db, search="europe") == []
    assert _names(list_traces(db, search="gazetteer")) == ["atlas"]
    # Updating a step's text in place is followed too.
    db.execute(sa.update(Step).where(Step.text == "Use the calculator tool.").values(text="abacus"))
    db.commit()
    assert list_traces(db, search="calculator") == []
    assert _names(list_traces(db, search="abacus")) == ["calc"]
    assert _names(list_traces(db, search="times")) == ["calc"]  # only in the input
    db.execute(sa.update(Trace).where(Trace.name == "calc").values(input="quokka count"))
    db.execute(sa.update(Trace).where(Trace.name == "calc").values(name="calc"))  # no change
    db.commit()
    assert _names(list_traces(db, search="quokka")) == ["calc"]
    assert list_traces(db, search="times") == []  # the old input is gone
    assert _names(list_traces(db, search="six*seven")) == ["calc"]  # still in the answer
    assert delete_trace(db, trace_id=searchable["calc"])
    db.commit()
    assert list_traces(db, search="abacus") == []
    assert search_steps(db, query="abacus") == []
    assert list_traces(db, search="quokka") == []


def _filler(engine: sa.Engine, trace_id: str, count: int) -> None:
    """Many steps of other words, so a planner picks the search index for a rare word."""
    rows = [
        {
            "project_id": "default",
            "span_id": f"{index + 1:016x}",
            "seq": 0,
            "trace_id": trace_id,
            "ts_ns": index,
            "type": "THOUGHT",
            "text": f"ordinary filler words number {index}",
            "is_error": False,
            "citations": [],
        }
        for index in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(Step), rows)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")


def test_search_uses_the_full_text_index(engine: sa.Engine) -> None:
    trace_id = store(engine, agent_trace(name="one"))
    _filler(engine, trace_id, 5_000)
    plan = query_plan(engine, lambda session: list_traces(session, search="atlas"))
    steps_plan = query_plan(engine, lambda session: search_steps(session, query="atlas"))
    if engine.dialect.name == "sqlite":
        assert "steps_fts VIRTUAL TABLE INDEX" in plan
        assert "traces_fts VIRTUAL TABLE INDEX" in plan
        assert "steps_fts VIRTUAL TABLE INDEX" in steps_plan
    else:
        assert "ix_steps_search" in plan
        assert "ix_steps_search" in steps_plan
