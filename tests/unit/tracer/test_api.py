"""The user-facing API: what the quickstart and its siblings record."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import StatusCode

import lucidtrace as lt
from lucidtrace.tracer import semconv
from tests.unit.tracer.conftest import Recorder


def search(query: str) -> dict[str, object]:
    return {"query": query, "population": 387_758}


@lt.traced(kind="agent")
def run(question: str) -> str:
    lt.thought("I need Iceland's population, then its square.")
    with lt.tool_call("search", {"query": "Iceland population"}) as call:
        call.set_result(search("Iceland population"))
    lt.retrieval(
        "Iceland population",
        documents=[{"id": "doc-3", "content": "...", "score": 0.91, "source": "wiki"}],
    )
    return lt.answer("About 387,758 people [doc-3].", cites=["doc-3"])


def test_quickstart_records_agent_tool_and_retrieval_spans(recorder: Recorder) -> None:
    assert run("How many people live in Iceland?") == "About 387,758 people [doc-3]."
    agent = recorder.named("run")
    tool = recorder.named("execute_tool search")
    retriever = recorder.named("retrieval")
    assert agent.parent is None
    assert tool.parent is not None
    assert tool.parent.span_id == agent.context.span_id
    assert retriever.parent is not None
    assert retriever.parent.span_id == agent.context.span_id
    assert {tool.context.trace_id, retriever.context.trace_id} == {agent.context.trace_id}

    a = dict(agent.attributes or {})
    assert a[semconv.SPAN_KIND] == "AGENT"
    assert a[semconv.OPERATION_NAME] == "invoke_agent"
    assert a[semconv.AGENT_NAME] == "run"
    assert json.loads(a[semconv.INPUT]) == {"question": "How many people live in Iceland?"}
    assert json.loads(a[semconv.OUTPUT]) == "About 387,758 people [doc-3]."
    events = [(e.name, dict(e.attributes or {})) for e in agent.events]
    assert events == [
        (
            semconv.EVENT_THOUGHT,
            {semconv.THOUGHT_TEXT: "I need Iceland's population, then its square."},
        ),
        (
            semconv.EVENT_ANSWER,
            {
                semconv.ANSWER_TEXT: "About 387,758 people [doc-3].",
                semconv.ANSWER_CITATIONS: ("doc-3",),
            },
        ),
    ]

    t = dict(tool.attributes or {})
    assert t[semconv.SPAN_KIND] == "TOOL"
    assert t[semconv.OPERATION_NAME] == "execute_tool"
    assert t[semconv.TOOL_NAME] == "search"
    assert json.loads(t[semconv.TOOL_CALL_ARGUMENTS]) == {"query": "Iceland population"}
    assert json.loads(t[semconv.TOOL_CALL_RESULT]) == {
        "query": "Iceland population",
        "population": 387_758,
    }

    r = dict(retriever.attributes or {})
    assert r[semconv.SPAN_KIND] == "RETRIEVER"
    assert r[semconv.RETRIEVAL_QUERY] == "Iceland population"
    assert json.loads(r[semconv.RETRIEVAL_DOCUMENTS]) == [
        {"id": "doc-3", "content": "...", "score": 0.91, "source": "wiki"}
    ]


def test_tool_exception_is_recorded_as_the_tools_error_and_reraised(recorder: Recorder) -> None:
    class SearchDownError(RuntimeError):
        pass

    def call_tool() -> None:
        with lt.tool_call("search", '{"query": "x"}', call_id="call_1"):
            raise SearchDownError("timeout")

    with pytest.raises(SearchDownError, match="timeout") as raised:
        call_tool()
    tool = recorder.named("execute_tool search")
    assert tool.status.status_code is StatusCode.ERROR
    assert "timeout" in (tool.status.description or "")
    attrs = dict(tool.attributes or {})
    assert attrs[semconv.ERROR_TYPE].endswith("SearchDownError")
    assert attrs[semconv.TOOL_CALL_ID] == "call_1"
    # A JSON string, as models emit arguments, is kept as it is (not encoded twice).
    assert attrs[semconv.TOOL_CALL_ARGUMENTS] == '{"query": "x"}'
    assert [e.name for e in tool.events] == ["exception"]
    assert raised.value.args == ("timeout",)


def test_tool_set_error_without_raising(recorder: Recorder) -> None:
    with lt.tool_call("calc", {"expr": "1/0"}) as call:
        call.set_error("division by zero")
    tool = recorder.named("execute_tool calc")
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.status.description == "division by zero"


def test_set_result_returns_the_value(recorder: Recorder) -> None:
    marker = object()
    with lt.tool_call("t") as call:
        assert call.set_result(marker) is marker


def test_span_handle_sets_input_output_and_attributes(recorder: Recorder) -> None:
    with lt.span("plan", kind="Chain", input={"goal": "x"}) as s:
        s.set_output(["a", "b"])
        s.set_attribute("app.step", 3)
        s.set_attributes({"app.flags": ["x", "y"], "app.config": {"k": 1}})
        assert s.is_recording
    attrs = recorder.attrs("plan")
    assert attrs[semconv.SPAN_KIND] == "CHAIN"
    assert json.loads(attrs[semconv.INPUT]) == {"goal": "x"}
    assert json.loads(attrs[semconv.OUTPUT]) == ["a", "b"]
    assert attrs["app.step"] == 3
    assert attrs["app.flags"] == ("x", "y")
    assert json.loads(attrs["app.config"]) == {"k": 1}


def test_span_records_an_exception_and_reraises_it_unchanged(recorder: Recorder) -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError) as raised, lt.span("lookup"):
        raise error
    assert raised.value is error
    span = recorder.named("lookup")
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})[semconv.ERROR_TYPE] == "KeyError"


def test_nested_spans_link_to_their_parent(recorder: Recorder) -> None:
    with lt.span("outer", kind="agent"), lt.span("inner", kind="llm"):
        pass
    outer, inner = recorder.named("outer"), recorder.named("inner")
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert dict(inner.attributes or {})[semconv.OPERATION_NAME] == "chat"


@pytest.mark.parametrize("kind", ["agenty", "", "tool "])
def test_invalid_kind_is_a_clear_error_at_decoration_time(kind: str) -> None:
    with pytest.raises(ValueError, match="not a lucidtrace span kind; use one of: agent, llm"):
        lt.traced(kind=kind)
    with pytest.raises(ValueError, match="span kind"):
        lt.span("x", kind=kind)


@pytest.mark.parametrize("kind", ["agent", "AGENT", "Agent", "aGeNt"])
def test_kind_is_case_insensitive(recorder: Recorder, kind: str) -> None:
    @lt.traced(kind=kind)
    def f() -> None:
        return None

    f()
    assert recorder.attrs("f")[semconv.SPAN_KIND] == "AGENT"


def test_thought_and_answer_without_a_current_span(recorder: Recorder) -> None:
    lt.thought("standalone reasoning")
    assert lt.answer("42", cites=["d1", 2]) == "42"
    reasoning = recorder.named("reasoning")
    assert dict(reasoning.attributes or {})[semconv.SPAN_KIND] == "REASONING"
    assert reasoning.start_time == pytest.approx(reasoning.end_time, abs=10_000_000)
    assert [e.name for e in reasoning.events] == [semconv.EVENT_THOUGHT]
    answer = recorder.named("answer")
    event = answer.events[0]
    assert event.name == semconv.EVENT_ANSWER
    assert dict(event.attributes or {})[semconv.ANSWER_CITATIONS] == ("d1", "2")


def test_retrieval_normalises_documents(recorder: Recorder) -> None:
    class Doc:
        def __init__(self) -> None:
            self.page_content = "langchain-like"
            self.metadata = {"id": "lc-1", "page": 4}

    lt.retrieval(
        "q",
        documents=["plain text", {"id": 7, "content": "c", "lang": "en"}, Doc()],
        data_source="wiki-index",
    )
    attrs = recorder.attrs("retrieval")
    assert attrs[semconv.DATA_SOURCE_ID] == "wiki-index"
    assert json.loads(attrs[semconv.RETRIEVAL_DOCUMENTS]) == [
        {"id": "0", "content": "plain text"},
        {"id": "7", "content": "c", "metadata": {"lang": "en"}},
        {"id": "lc-1", "content": "langchain-like", "metadata": {"id": "lc-1", "page": 4}},
    ]


def test_trace_attributes_stamp_every_span_inside(recorder: Recorder) -> None:
    with (
        lt.trace_attributes(session_id="s-1", user_id="ana", tags=["beta"], metadata={"a": 1}),
        lt.span("root"),
        lt.trace_attributes(tags=["inner"], metadata={"b": 2}),
        lt.span("child"),
    ):
        pass
    with lt.span("after"):
        pass
    root, child = recorder.attrs("root"), recorder.attrs("child")
    assert root[semconv.SESSION_ID] == "s-1"
    assert root[semconv.USER_ID] == "ana"
    assert root[semconv.TAGS] == ("beta",)
    assert json.loads(root[semconv.METADATA]) == {"a": 1}
    assert child[semconv.SESSION_ID] == "s-1"
    assert child[semconv.TAGS] == ("beta", "inner")
    assert json.loads(child[semconv.METADATA]) == {"a": 1, "b": 2}
    assert semconv.SESSION_ID not in recorder.attrs("after")


def test_traced_trace_arguments_apply_to_the_call_and_its_children(recorder: Recorder) -> None:
    @lt.traced(kind="agent", session_id="chat-9", user_id="u-1", tags=["t"], metadata={"v": 2})
    def agent() -> None:
        with lt.tool_call("noop"):
            pass

    agent()
    for name in ("agent", "execute_tool noop"):
        attrs = recorder.attrs(name)
        assert attrs[semconv.SESSION_ID] == "chat-9"
        assert attrs[semconv.USER_ID] == "u-1"
        assert attrs[semconv.TAGS] == ("t",)


def test_tags_must_be_a_list() -> None:
    with pytest.raises(TypeError, match=r"tags=\[\.\.\.\]"):
        lt.traced(tags="oops")


def test_traced_without_parentheses_and_on_methods(recorder: Recorder) -> None:
    class Agent:
        @lt.traced
        def act(self, x: int, *rest: int, scale: float = 1.0, **extra: str) -> float:
            return (x + sum(rest)) * scale

    assert Agent().act(1, 2, 3, scale=2.0, note="n") == 12.0
    attrs = recorder.attrs("act")
    assert attrs[semconv.SPAN_KIND] == "CHAIN"
    assert json.loads(attrs[semconv.INPUT]) == {
        "x": 1,
        "rest": [2, 3],
        "scale": 2.0,
        "extra": {"note": "n"},
    }
    assert json.loads(attrs[semconv.OUTPUT]) == 12.0


def test_traced_name_and_capture_switches(recorder: Recorder) -> None:
    @lt.traced(name="secret-step", capture_input=False, capture_output=False)
    def f(password: str) -> str:
        return password

    assert f("hunter2") == "hunter2"
    attrs = recorder.attrs("secret-step")
    assert semconv.INPUT not in attrs
    assert semconv.OUTPUT not in attrs


def test_traced_keeps_the_function_metadata() -> None:
    @lt.traced(kind="tool")
    def documented(a: int) -> int:
        """Docs."""
        return a

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docs."
