"""The ingest mapper (pure): span kinds, steps and their fields, documents, trace fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lucidtrace.store.ingest import PROBLEMS_KEY, MappedSpan, derive_span, derive_trace
from lucidtrace.tracer import semconv as sc
from tests.unit.store.test_ingest_records import agent_trace, new_trace_id, record


def steps_of(items: list[MappedSpan]) -> list[dict[str, Any]]:
    """All steps in trail order: (ts, span_id, seq)."""
    steps = [s for item in items for s in item.steps]
    return sorted(steps, key=lambda s: (s["ts_ns"], s["span_id"], s["seq"]))


def test_quickstart_trace_gives_the_trail_in_order_with_fields() -> None:
    items = derive_trace(agent_trace())
    trail = [(s["type"], s["text"], s["tool_name"]) for s in steps_of(items)]
    assert trail == [
        ("THOUGHT", "I need Iceland's population.", None),
        ("ACTION", None, "search"),
        ("OBSERVATION", "387,758 (2024)", None),
        ("RETRIEVAL", "Iceland population", None),
        ("ANSWER", "About 387,758 people [doc-3].", None),
    ]
    action = steps_of(items)[1]
    assert json.loads(action["tool_args"]) == {"query": "Iceland population"}
    assert action["tool_call_id"] == "call-1"
    assert steps_of(items)[2]["tool_call_id"] == "call-1"
    assert steps_of(items)[4]["citations"] == ["doc-3"]
    kinds = {item.span["name"]: item.span["kind"] for item in items}
    assert kinds == {"run": "AGENT", "execute_tool search": "TOOL", "retrieval": "RETRIEVER"}


def test_retriever_span_gives_documents_with_rank_id_score_content_source_metadata() -> None:
    retriever = derive_trace(agent_trace())[2]
    docs = [
        (d["rank"], d["doc_id"], d["score"], d["content"], d["source"], d["metadata"])
        for d in retriever.documents
    ]
    assert docs == [
        (1, "doc-3", 0.91, "Iceland has 387,758 inhabitants.", "wiki", {"lang": "en"}),
        (2, "doc-7", 0.4, "Reykjavik is the capital.", None, {}),
    ]
    assert retriever.span["input"] == "Iceland population"


def test_root_span_input_output_and_trace_fields() -> None:
    root = derive_trace(agent_trace())[0]
    assert json.loads(root.span["input"]) == {"question": "How many people live in Iceland?"}
    assert root.span["output"] == "About 387,758 people [doc-3]."
    assert root.trace_fields == {
        "session_id": "session-1",
        "user_id": "user-1",
        "tags": ["demo", "quickstart"],
        "metadata": {"env": "test"},
    }


def test_failed_tool_gives_an_error_observation_from_status_or_exception() -> None:
    trace_id = new_trace_id()
    by_status = derive_span(
        record(
            trace_id=trace_id,
            attributes={sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "calc", sc.TOOL_CALL_ARGUMENTS: "{}"},
            status="error",
            message="ZeroDivisionError: division by zero",
        )
    )
    by_event = derive_span(
        record(
            trace_id=trace_id,
            attributes={sc.OPERATION_NAME: "execute_tool", sc.TOOL_NAME: "calc"},
            status="error",
            events=[
                ("exception", 5, {"exception.type": "KeyError", "exception.message": "'x'"}),
            ],
        )
    )
    for item, text in (
        (by_status, "ZeroDivisionError: division by zero"),
        (by_event, "KeyError: 'x'"),
    ):
        types = [(s["type"], s["is_error"]) for s in item.steps]
        assert types == [("ACTION", False), ("OBSERVATION", True)]
        assert item.steps[1]["text"] == text
        assert item.span["kind"] == "TOOL"


@pytest.mark.parametrize(
    ("attributes", "kind"),
    [
        ({sc.SPAN_KIND: "tool", "openinference.span.kind": "LLM"}, "TOOL"),
        ({"openinference.span.kind": "RETRIEVER", sc.OPERATION_NAME: "chat"}, "RETRIEVER"),
        ({sc.OPERATION_NAME: "chat"}, "LLM"),
        ({sc.OPERATION_NAME: "invoke_agent"}, "AGENT"),
        ({sc.OPERATION_NAME: "embeddings"}, "EMBEDDING"),
        ({sc.OPERATION_NAME: "invoke_workflow"}, "CHAIN"),
        ({sc.SPAN_KIND: "NONSENSE", sc.OPERATION_NAME: "execute_tool"}, "TOOL"),
        ({}, "UNKNOWN"),
    ],
)
def test_span_kind_precedence(attributes: dict[str, Any], kind: str) -> None:
    assert derive_span(record(trace_id=new_trace_id(), attributes=attributes)).span["kind"] == kind


def llm_span(output: list[dict[str, Any]], **attrs: Any) -> MappedSpan:
    return derive_span(
        record(
            trace_id=new_trace_id(),
            name="chat gpt-4o",
            start=0,
            end=50,
            attributes={
                sc.OPERATION_NAME: "chat",
                sc.INPUT_MESSAGES: json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
                ),
                sc.OUTPUT_MESSAGES: json.dumps(output),
                **attrs,
            },
        )
    )


def test_genai_output_parts_reasoning_and_tool_call_become_thought_and_action() -> None:
    item = llm_span(
        [
            {
                "role": "assistant",
                "parts": [
                    {"type": "reasoning", "content": "The user wants the weather."},
                    {
                        "type": "tool_call",
                        "id": "call_9",
                        "name": "weather",
                        "arguments": {"city": "Paris"},
                    },
                ],
                "finish_reason": "tool_call",
            }
        ],
        **{
            sc.REQUEST_MODEL: "gpt-4o",
            sc.RESPONSE_MODEL: "gpt-4o-2024-08-06",
            sc.PROVIDER_NAME: "openai",
            sc.USAGE_INPUT_TOKENS: 12,
            sc.USAGE_OUTPUT_TOKENS: 7,
            sc.USAGE_REASONING_TOKENS: 3,
        },
    )
    steps = [(s["type"], s["text"], s["tool_name"], s["tool_call_id"]) for s in item.steps]
    assert steps == [
        ("THOUGHT", "The user wants the weather.", None, None),
        ("ACTION", None, "weather", "call_9"),
    ]
    assert json.loads(item.steps[1]["tool_args"]) == {"city": "Paris"}
    assert all(s["ts_ns"] == item.span["end_ns"] for s in item.steps)
    span = item.span
    assert (span["model"], span["provider"]) == ("gpt-4o-2024-08-06", "openai")
    assert (span["input_tokens"], span["output_tokens"], span["reasoning_tokens"]) == (12, 7, 3)
    assert span["kind"] == "LLM"
    assert json.loads(span["input"])[0]["role"] == "user"


def test_plain_llm_text_is_not_an_answer_but_react_text_and_think_blocks_are_steps() -> None:
    plain = llm_span([{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}]}])
    assert plain.steps == ()
    react = llm_span(
        [
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "text",
                        "content": "<think>Check the capital.</think>Thought: I know it.\n"
                        "Final Answer: Paris",
                    }
                ],
            }
        ]
    )
    assert [(s["type"], s["text"]) for s in react.steps] == [
        ("THOUGHT", "Check the capital."),
        ("THOUGHT", "I know it."),
        ("ANSWER", "Paris"),
    ]


def test_agent_final_output_is_its_answer_unless_it_answered_explicitly() -> None:
    trace_id = new_trace_id()
    implicit = derive_span(
        record(
            trace_id=trace_id,
            attributes={sc.SPAN_KIND: "AGENT", sc.OUTPUT: json.dumps("42")},
            start=0,
            end=100,
        )
    )
    assert [(s["type"], s["text"], s["ts_ns"]) for s in implicit.steps] == [
        ("ANSWER", "42", implicit.span["end_ns"])
    ]
    # An explicit answer on a child span, given while the agent ran, supersedes the output.
    root = record(
        trace_id=trace_id,
        span_id="00000000000000aa",
        attributes={sc.SPAN_KIND: "AGENT", sc.OUTPUT: json.dumps("42")},
        start=0,
        end=100,
    )
    child = record(
        trace_id=trace_id,
        parent="00000000000000aa",
        start=10,
        end=90,
        events=[(sc.EVENT_ANSWER, 50, {sc.ANSWER_TEXT: "42, because 6*7"})],
    )
    assert [s["text"] for s in steps_of(derive_trace([root, child]))] == ["42, because 6*7"]


def test_llm_proposed_action_is_dropped_when_the_tool_span_records_it() -> None:
    trace_id = new_trace_id()
    llm = record(
        trace_id=trace_id,
        start=0,
        end=10,
        attributes={
            sc.OPERATION_NAME: "chat",
            sc.OUTPUT_MESSAGES: json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [
                            {"type": "tool_call", "id": "c1", "name": "search", "arguments": "{}"},
                            {"type": "tool_call", "id": "c2", "name": "never_ran"},
                            {"type": "text", "content": "Action: lookup[Paris]"},
                        ],
                    }
                ]
            ),
        },
    )
    by_id = record(
        trace_id=trace_id,
        start=20,
        end=30,
        attributes={sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "search", sc.TOOL_CALL_ID: "c1"},
    )
    by_name_args = record(
        trace_id=trace_id,
        start=40,
        end=50,
        attributes={sc.SPAN_KIND: "TOOL", sc.TOOL_NAME: "lookup", sc.TOOL_CALL_ARGUMENTS: "Paris"},
    )
    actions = [
        (s["tool_name"], s["span_id"] == llm.span_id)
        for s in steps_of(derive_trace([llm, by_id, by_name_args]))
        if s["type"] == "ACTION"
    ]
    assert actions == [("never_ran", True), ("search", False), ("lookup", False)]


def test_openinference_llm_retriever_and_tool_spans() -> None:
    trace_id = new_trace_id()
    llm = derive_span(
        record(
            trace_id=trace_id,
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "llama-3",
                "llm.token_count.prompt": 5,
                "llm.token_count.completion": 6,
                "input.value": "What is 2+2?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.contents.0.message_content.type": "reasoning",
                "llm.output_messages.0.message.contents.0.message_content.text": "Add them.",
                "llm.output_messages.0.message.tool_calls.0.tool_call.id": "t1",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "calc",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "2+2",
            },
        )
    )
    assert [(s["type"], s["text"], s["tool_name"]) for s in llm.steps] == [
        ("THOUGHT", "Add them.", None),
        ("ACTION", None, "calc"),
    ]
    assert (llm.span["model"], llm.span["input_tokens"], llm.span["output_tokens"]) == (
        "llama-3",
        5,
        6,
    )
    assert llm.span["input"] == "What is 2+2?"
    retriever = derive_span(
        record(
            trace_id=trace_id,
            attributes={
                "openinference.span.kind": "RETRIEVER",
                "input.value": "capital of France",
                "retrieval.documents.0.document.id": "d1",
                "retrieval.documents.0.document.content": "Paris is the capital.",
                "retrieval.documents.0.document.score": 0.8,
                "retrieval.documents.0.document.metadata": '{"src": "atlas"}',
                "retrieval.documents.1.document.id": "d2",
            },
        )
    )
    assert [(s["type"], s["text"]) for s in retriever.steps] == [("RETRIEVAL", "capital of France")]
    assert [(d["doc_id"], d["content"], d["metadata"]) for d in retriever.documents] == [
        ("d1", "Paris is the capital.", {"src": "atlas"}),
        ("d2", None, {}),
    ]
    tool = derive_span(
        record(
            trace_id=trace_id,
            attributes={
                "openinference.span.kind": "TOOL",
                "tool.name": "calc",
                "input.value": "2+2",
                "output.value": "4",
            },
        )
    )
    assert [(s["type"], s["tool_name"], s["tool_args"], s["text"]) for s in tool.steps] == [
        ("ACTION", "calc", "2+2", None),
        ("OBSERVATION", None, None, "4"),
    ]


def test_dual_written_openinference_and_genai_messages_give_steps_once() -> None:
    item = llm_span(
        [{"role": "assistant", "parts": [{"type": "reasoning", "content": "Same thought."}]}],
        **{
            "openinference.span.kind": "LLM",
            "llm.output_messages.0.message.contents.0.message_content.type": "reasoning",
            "llm.output_messages.0.message.contents.0.message_content.text": "Same thought.",
        },
    )
    assert [s["text"] for s in item.steps] == ["Same thought."]


class Weird:
    def __repr__(self) -> str:
        return "<weird>"


def test_hostile_attributes_keep_the_span_and_its_content() -> None:
    deep: Any = "bottom"
    for _ in range(500):
        deep = [deep]
    many = {f"attr.{i}": i for i in range(10_000)}
    huge = "x" * 2_000_000
    item = derive_span(
        record(
            trace_id=new_trace_id(),
            name="n" * 2000,
            attributes={
                **many,
                "__class__": "not a class",
                "__proto__": {"polluted": True},
                "bytes": b"\xff\x00raw",
                "utf8 bytes": "héllo".encode(),
                "tuple": (1, 2.5, "three"),
                "nan": float("nan"),
                "nul": "a\x00b",
                "deep": deep,
                "weird": Weird(),
                "huge": huge,
                sc.SPAN_KIND: "TOOL",
                sc.TOOL_NAME: ["not", "a", "string"],
                sc.TOOL_CALL_ARGUMENTS: "{not json",
                sc.TOOL_CALL_RESULT: huge,
                sc.USAGE_INPUT_TOKENS: "lots",
                sc.METADATA: "[1, 2",
                sc.RETRIEVAL_DOCUMENTS: '{"id": 1}',
            },
        )
    )
    attrs = item.span["attributes"]
    assert attrs["attr.9999"] == 9999
    assert attrs["__class__"] == "not a class"
    assert attrs["__proto__"] == {"polluted": True}
    assert attrs["bytes"] == {"base64": "/wByYXc="}
    assert attrs["utf8 bytes"] == "héllo"
    assert attrs["tuple"] == [1, 2.5, "three"]
    assert attrs["nan"] == "NaN"
    assert attrs["nul"] == "a\ufffdb"
    assert attrs["weird"] == "<weird>"
    assert attrs["huge"] == huge
    json.dumps(attrs)  # storable as JSON, however deep the input was
    assert attrs[sc.TOOL_CALL_ARGUMENTS] == "{not json"
    # Content is kept whole, not truncated; the malformed pieces are listed.
    assert item.steps[1]["text"] == huge
    assert item.steps[0]["tool_args"] == "{not json"
    assert len(item.span["name"]) == 500
    assert attrs["lucidtrace.ingest.span_name"] == "n" * 2000
    problems = attrs[PROBLEMS_KEY]
    assert problems == list(item.problems)
    for fragment in (sc.TOOL_NAME, sc.USAGE_INPUT_TOKENS, sc.METADATA, "NUL", "deeper"):
        assert any(fragment in p for p in problems), fragment
    assert item.span["input_tokens"] is None


def test_invalid_ids_are_refused_with_a_message() -> None:
    bad = record(trace_id="not-hex", span_id="zz")
    with pytest.raises(ValueError, match="trace id"):
        derive_span(bad)
