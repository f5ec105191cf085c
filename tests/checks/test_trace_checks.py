"""The four trace-only checks on hand-written agent runs (recorded through the real tracer)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.probes.checks.runner import run_checks
from lucidtrace.probes.checks.trace_checks._text import extract_numbers, near_miss, quote_found
from lucidtrace.store.models import DEFAULT_PROJECT_ID, Finding
from tests.checks.conftest import Recorder


def _run(rec: Recorder, trace_id: str, check: str, **kwargs: object) -> list[Finding]:
    with Session(rec.engine, expire_on_commit=False) as session, session.begin():
        return run_checks(
            session,
            project_id=DEFAULT_PROJECT_ID,
            trace_id=trace_id,
            checks=[check],
            **kwargs,  # type: ignore[arg-type]
        )


def _calculator(answer: str, *, thought: str | None = None) -> None:
    lt.thought("I will use the calculator to compute 387758 * 387758.")
    with lt.tool_call("calculator", {"expression": "387758*387758"}) as call:
        call.set_result(150356266564)
    if thought:
        lt.thought(thought)
    lt.answer(answer)


def test_a_miscopied_calculator_result_is_flagged_with_its_evidence(
    sqlite_recorder: Recorder,
) -> None:
    trace_id = sqlite_recorder.record(
        lambda: _calculator("387758 squared is 15,035,626,656."), question="387758 * 387758?"
    )
    (finding,) = _run(sqlite_recorder, trace_id, "observation_grounding")
    assert finding.status == "flagged"
    assert "15,035,626,656" in (finding.message or "")
    assert "150,356,266,564" in (finding.message or "")
    assert finding.evidence["kind"] == "contradicted"
    assert finding.evidence["expected"] == "150,356,266,564"
    assert finding.evidence["observation"] == "150356266564"
    assert finding.evidence["observation_step"]["seq"] == 1
    assert finding.step_span_id is not None  # the ANSWER step
    (ignored,) = _run(sqlite_recorder, trace_id, "evidence_ignored")
    assert ignored.status == "flagged"
    assert sqlite_recorder.verdict(trace_id) == "flagged"


def test_correct_rounded_and_derived_numbers_pass(sqlite_recorder: Recorder) -> None:
    def agent() -> None:
        with lt.tool_call("search", {"query": "population of Iceland"}) as call:
            call.set_result("Iceland had 387,758 inhabitants on 1 January 2023.")
        lt.thought("The search says Iceland has 387,758 people, so twice that is 775,516.")
        lt.answer("About 390,000 people live in Iceland (roughly 0.39 million).")

    trace_id = sqlite_recorder.record(agent, question="How many people live in Iceland?")
    (finding,) = _run(sqlite_recorder, trace_id, "observation_grounding")
    assert finding.status == "passed", finding.message
    assert finding.score == 0.0


def test_a_quoted_search_result_that_was_never_returned_is_flagged(
    sqlite_recorder: Recorder,
) -> None:
    def agent() -> None:
        with lt.tool_call("search", {"query": "tallest mountain in Africa"}) as call:
            call.set_result("Kilimanjaro is the highest mountain in Africa.")
        lt.thought('The search result says "Mount Kenya is the tallest mountain in Africa".')
        lt.answer("Mount Kenya.")

    trace_id = sqlite_recorder.record(agent)
    (finding,) = _run(sqlite_recorder, trace_id, "observation_grounding")
    assert finding.status == "flagged"
    assert finding.evidence["kind"] == "unsupported_quote"
    assert "Mount Kenya is the tallest" in (finding.message or "")


def test_a_result_claimed_from_a_tool_never_called_is_flagged(sqlite_recorder: Recorder) -> None:
    def agent() -> None:
        lt.thought("The weather service reports rain in Lisbon tomorrow.")
        lt.answer("Take an umbrella.")

    trace_id = sqlite_recorder.record(agent)
    (finding,) = _run(sqlite_recorder, trace_id, "observation_grounding")
    assert finding.status == "flagged"
    assert finding.evidence["kind"] == "phantom_tool"
    assert "weather" in (finding.message or "")


def test_nothing_to_check_is_inconclusive(sqlite_recorder: Recorder) -> None:
    trace_id = sqlite_recorder.record(lambda: lt.answer("Hello there."))
    for check in ("observation_grounding", "plan_action_consistency", "citation_grounding"):
        (finding,) = _run(sqlite_recorder, trace_id, check)
        assert finding.status == "inconclusive", check
    assert sqlite_recorder.verdict(trace_id) == "unchecked"


@pytest.mark.parametrize(
    ("tool", "args", "flagged"),
    [
        ("calculator", {"expression": "387758*387758"}, False),
        ("web_search", {"query": "387758 * 387758"}, True),
        ("calculator", {"expression": "387758*387785"}, True),
    ],
)
def test_plan_action_consistency(
    sqlite_recorder: Recorder, tool: str, args: dict[str, str], flagged: bool
) -> None:
    def agent() -> None:
        lt.thought("Let me use the calculator to compute 387758 * 387758.")
        with lt.tool_call(tool, args) as call:
            call.set_result("done")

    trace_id = sqlite_recorder.record(agent)
    (finding,) = _run(sqlite_recorder, trace_id, "plan_action_consistency")
    assert finding.status == ("flagged" if flagged else "passed"), finding.message
    if flagged:
        assert finding.evidence["found"].startswith(tool)
        assert "the stated plan is not what the agent did next" in (finding.message or "")


def _rag(answer: str, cites: list[str]) -> None:
    lt.retrieval(
        "Mount Aldor",
        [
            {"id": "doc-1", "content": "Mount Aldor is 4,810 metres high."},
            {"id": "doc-2", "content": "Lake Senna covers 212 square kilometres."},
        ],
    )
    lt.answer(answer, cites=cites)


@pytest.mark.parametrize(
    ("answer", "cites", "status", "found"),
    [
        ("Mount Aldor rises to 4,810 metres [doc-1].", ["doc-1"], "passed", None),
        ("Mount Aldor rises to 4,810 metres [doc-7].", ["doc-7"], "flagged", "doc-7"),
        ("Mount Aldor rises to 4,810 metres [doc-2].", ["doc-2"], "flagged", "doc-2"),
        ("Mount Aldor rises to 4,810 metres [1].", [], "passed", None),
    ],
)
def test_citation_grounding(
    sqlite_recorder: Recorder, answer: str, cites: list[str], status: str, found: str | None
) -> None:
    trace_id = sqlite_recorder.record(lambda: _rag(answer, cites))
    findings = _run(sqlite_recorder, trace_id, "citation_grounding")
    assert {f.status for f in findings} == {status}, [f.message for f in findings]
    if found:
        assert findings[0].evidence["found"] == found


@pytest.mark.parametrize(
    ("observations", "answer", "flagged"),
    [
        (["The City Museum is closed on Mondays."], "Yes, it is open on Mondays.", True),
        (["The City Museum is closed on Mondays."], "No, the museum is closed on Mondays.", False),
        (["The City Museum is closed on Mondays."], "The City Museum does not open on Mondays.",
         False),
        # The latest observation wins: a correction is followed, not ignored.
        (["The City Museum is closed on Mondays.", "Update: the City Museum is open on Mondays."],
         "Yes, the City Museum is open on Mondays.", False),
    ],
)  # fmt: skip
def test_evidence_ignored(
    sqlite_recorder: Recorder, observations: list[str], answer: str, flagged: bool
) -> None:
    def agent() -> None:
        for text in observations:
            with lt.tool_call("opening_hours", {"place": "City Museum"}) as call:
                call.set_result(text)
        lt.answer(answer)

    trace_id = sqlite_recorder.record(agent, question="Is the City Museum open on Mondays?")
    (finding,) = _run(sqlite_recorder, trace_id, "evidence_ignored")
    assert finding.status == ("flagged" if flagged else "passed"), finding.message
    if flagged:
        assert finding.evidence["expected"] == "closed"
        assert finding.evidence["found"] == "open"
        assert "not supported by the evidence" in (finding.message or "")


def test_number_reading() -> None:
    (mention,) = extract_numbers("the calculator returned 150,356,266,564")
    assert mention.value == 150_356_266_564
    (million,) = extract_numbers("about 3.9 million people")
    assert million.value == 3_900_000
    assert million.approx
    assert [
        m.value for m in extract_numbers("see [doc-12] and doc-3, on 2024-05-01 at 17:00")
    ] == []
    assert [m.value for m in extract_numbers("the 20th century, 1st place, 12 items")] == [12]
    (typo,) = extract_numbers("15,035,626,656")
    assert near_miss(typo, 150_356_266_564)
    (swap,) = extract_numbers("387,785")
    assert near_miss(swap, 387_758)
    (other,) = extract_numbers("512,004")
    assert not near_miss(other, 387_758)


def test_a_written_out_calculation_grounds_each_step(sqlite_recorder: Recorder) -> None:
    def agent() -> None:
        lt.thought("There are 12 boxes of 3 apples and 4 loose ones: 12 * 3 = 36, 36 + 4 = 40.")
        lt.answer("There are 40 apples.")

    question = "How many apples are there in 12 boxes of 3 apples plus 4 loose ones?"
    trace_id = sqlite_recorder.record(agent, question=question)
    (finding,) = _run(sqlite_recorder, trace_id, "observation_grounding")
    assert finding.status == "passed", finding.message


def test_a_plan_naming_a_specific_tool_matches_it(sqlite_recorder: Recorder) -> None:
    def agent() -> None:
        lt.thought("I should look up the weather in Oslo with get_weather.")
        with lt.tool_call("get_weather", {"city": "Oslo"}) as call:
            call.set_result("Oslo: 4 C, snow.")
        lt.thought("Let me look up the weather forecast for Bergen.")
        with lt.tool_call("get_weather", {"city": "Oslo"}) as call:
            call.set_result("Oslo: 4 C, snow.")

    trace_id = sqlite_recorder.record(agent)
    (finding,) = _run(sqlite_recorder, trace_id, "plan_action_consistency")
    # The first plan was carried out; the second announced Bergen and the action asked for Oslo.
    assert finding.status == "flagged"
    assert "Bergen" in finding.evidence["claim"]
    assert finding.evidence["found"].startswith("get_weather")


def _everest(query: str, answer: str) -> None:
    lt.thought("I will search for the height of Mount Everest.")
    with lt.tool_call("search", {"query": query}) as call:
        call.set_result(
            "Mount Everest is Earth's highest mountain above sea level, with an elevation of "
            "8,849 m (29,032 ft)."
        )
    lt.answer(answer)


def test_a_value_the_agent_typed_into_its_own_search_grounds_nothing(
    sqlite_recorder: Recorder,
) -> None:
    # The demo's failure: the agent searched for a height it made up and answered with it,
    # while the document it retrieved says 8,849 m.
    trace_id = sqlite_recorder.record(
        lambda: _everest(
            "Mount Everest height 8,978.25 m", "The height of Mount Everest is 8,978.25 m."
        ),
        question="How tall is Mount Everest?",
    )
    (grounding,) = _run(sqlite_recorder, trace_id, "observation_grounding")
    assert grounding.status == "flagged"
    assert grounding.evidence["found"] == "8,978.25 m"
    assert "only the agent's own arguments to the search tool" in (grounding.message or "")
    assert grounding.evidence["tool_arguments"] == "query: Mount Everest height 8,978.25 m"
    assert "observation" not in grounding.evidence
    (ignored,) = _run(sqlite_recorder, trace_id, "evidence_ignored")
    assert ignored.status == "flagged"
    assert ignored.evidence["found"] == "8,978.25 m"
    assert ignored.evidence["expected"] == "8,849 m"
    assert "8,849 m" in (ignored.message or "")


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        # The number in the tool's arguments is confirmed by the observation.
        ("Mount Everest height 8,849 m", "Mount Everest is 8,849 m high."),
        # The observed value restated, rounded, or in the other unit it gives.
        ("Mount Everest height", "Mount Everest is about 8,850 metres tall."),
        ("Mount Everest height", "Its elevation is 8,849 m, or 29,032 feet."),
    ],
)
def test_an_answer_restating_the_observed_value_passes(
    sqlite_recorder: Recorder, query: str, answer: str
) -> None:
    trace_id = sqlite_recorder.record(
        lambda: _everest(query, answer), question="How tall is Mount Everest?"
    )
    for check in ("observation_grounding", "evidence_ignored"):
        (finding,) = _run(sqlite_recorder, trace_id, check)
        assert finding.status == "passed", (check, finding.message)


def test_another_value_of_an_observed_quantity_is_flagged_and_arithmetic_is_not(
    sqlite_recorder: Recorder,
) -> None:
    def agent(answer: str) -> None:
        with lt.tool_call("search", {"query": "Iceland population"}) as call:
            call.set_result("Iceland had a population of 387,758 on 1 January 2023.")
        with lt.tool_call("calculator", {"expression": "387758 * 387758"}) as call:
            call.set_result(150356266564)
        lt.answer(answer)

    wrong = sqlite_recorder.record(
        lambda: agent("Iceland has a population of 402,100 people."),
        question="What is the population of Iceland?",
    )
    (finding,) = _run(sqlite_recorder, wrong, "evidence_ignored")
    assert finding.status == "flagged"
    assert finding.evidence["expected"] == "387,758"
    right = sqlite_recorder.record(
        lambda: agent(
            "Iceland has 387,758 people; the square of the population is 150,356,266,564."
        ),
        question="What is the population of Iceland, and its square?",
    )
    for check in ("observation_grounding", "evidence_ignored"):
        (finding,) = _run(sqlite_recorder, right, check)
        assert finding.status == "passed", (check, finding.message)


def test_years_and_versions_one_digit_apart_are_no_miscopies(sqlite_recorder: Recorder) -> None:
    def population() -> None:
        with lt.tool_call("search", {"query": "NYC population"}) as call:
            call.set_result("New York City population: 8,258,035 (2022 estimate).")
        lt.answer("The latest figure is 8,258,035, from 2022; no 2023 estimate was in the results.")

    def version() -> None:
        with lt.tool_call("shell", {"cmd": "python --version"}) as call:
            call.set_result("Python 3.11.4")
        lt.answer("Python 3.11.4 is installed; 3.12 is not.")

    nyc = sqlite_recorder.record(population, question="Population of New York City in 2023?")
    for check in ("observation_grounding", "evidence_ignored"):
        (finding,) = _run(sqlite_recorder, nyc, check)
        assert finding.status == "passed", (check, finding.message)
    python = sqlite_recorder.record(version, question="Which Python version is installed?")
    (ignored,) = _run(sqlite_recorder, python, "evidence_ignored")
    assert ignored.status == "passed", ignored.message
    (grounding,) = _run(sqlite_recorder, python, "observation_grounding")
    # 3.12 is in no observation, but it is no miscopy of 3.11.
    assert grounding.evidence.get("kind") != "contradicted", grounding.message
    # A miscopied count is still one.
    (typo,) = extract_numbers("8,285,035")
    assert near_miss(typo, 8_258_035)
    (year,) = extract_numbers("in 2023")
    assert not near_miss(year, 2022)


def test_a_quote_with_its_negation_dropped_or_words_scattered_is_not_found(
    sqlite_recorder: Recorder,
) -> None:
    result = (
        "The API allows 100 requests per minute per key, and enterprise keys are not exempt "
        "from this limit."
    )

    def agent(quote: str) -> None:
        with lt.tool_call("search", {"query": "API rate limit"}) as call:
            call.set_result(result)
        lt.thought(f'The search said "{quote}".')
        lt.answer("See above.")

    flipped = sqlite_recorder.record(lambda: agent("enterprise keys are exempt from this limit"))
    (finding,) = _run(sqlite_recorder, flipped, "observation_grounding")
    assert finding.status == "flagged"
    assert finding.evidence["kind"] == "unsupported_quote"
    assert finding.evidence["found"] == "enterprise keys are exempt from this limit"
    faithful = sqlite_recorder.record(
        lambda: agent("enterprise keys are not exempt from this limit")
    )
    (finding,) = _run(sqlite_recorder, faithful, "observation_grounding")
    assert finding.status == "passed", finding.message
    source = (
        "Berlin is the capital of Germany. Paris is a large city in France and a fashion capital."
    )
    assert not quote_found("Paris is the capital of Germany", [source])
    assert quote_found("Berlin is the capital of Germany", [source])
    assert not quote_found("the drug is not safe for children", ["The drug is safe for children."])


@pytest.mark.parametrize(
    ("thought", "tool", "args", "flagged"),
    [
        # Any word of the name may say what the tool is; an unknown kind is judged by arguments.
        ("Let me look up the weather forecast for Paris.", "get_current_conditions",
         {"city": "Paris"}, False),
        ("I'll compute 17 * 23 with the calculator.", "python_eval", {"code": "17*23"}, False),
        ("I'll compute 17 * 23 with the calculator.", "web_search", {"query": "17*23"}, True),
        ("Let me look up the weather forecast for Paris.", "get_current_conditions",
         {"city": "Lyon"}, True),
    ],
)  # fmt: skip
def test_a_tool_of_the_announced_kind_under_another_name_carries_out_the_plan(
    sqlite_recorder: Recorder, thought: str, tool: str, args: dict[str, str], flagged: bool
) -> None:
    def agent() -> None:
        lt.thought(thought)
        with lt.tool_call(tool, args) as call:
            call.set_result("done")
        lt.answer("done")

    trace_id = sqlite_recorder.record(agent)
    (finding,) = _run(sqlite_recorder, trace_id, "plan_action_consistency")
    assert finding.status == ("flagged" if flagged else "passed"), finding.message
