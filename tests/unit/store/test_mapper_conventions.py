"""The GenAI details event, the legacy gen_ai.prompt/completion form and OpenLLMetry's traceloop.*:
steps, fields, precedence, and malformed input that is kept and listed, never dropped."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from lucidtrace.store import create_engine, ingest_spans
from lucidtrace.store.ingest import PROBLEMS_KEY, MappedSpan, derive_span, derive_trace
from lucidtrace.store.models import Span, Step
from lucidtrace.tracer import semconv as sc
from tests.unit.store.test_ingest_records import new_span_id, new_trace_id, record

DETAILS = "gen_ai.client.inference.operation.details"


def derive(attributes: dict[str, Any], **kwargs: Any) -> MappedSpan:
    return derive_span(record(trace_id=new_trace_id(), attributes=attributes, **kwargs))


def trail(item: MappedSpan) -> list[tuple[Any, ...]]:
    return [
        (s["type"], s["text"], s["tool_name"], s["tool_args"], s["tool_call_id"])
        for s in item.steps
    ]


def problems(item: MappedSpan) -> list[str]:
    return list(item.span["attributes"].get(PROBLEMS_KEY, []))


OUTPUT = [
    {
        "role": "assistant",
        "parts": [
            {"type": "reasoning", "content": "Look it up."},
            {"type": "tool_call", "id": "c1", "name": "search", "arguments": {"q": "x"}},
        ],
    }
]


# ---------------------------------------------------------------- the details event


def test_the_details_event_gives_the_same_steps_as_span_attributes() -> None:
    on_span = derive({sc.OPERATION_NAME: "chat", sc.OUTPUT_MESSAGES: json.dumps(OUTPUT)})
    on_event = derive(
        {sc.OPERATION_NAME: "chat", sc.REQUEST_MODEL: "gpt-test"},
        events=[
            (
                DETAILS,
                5,
                {
                    sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": []}]),
                    sc.OUTPUT_MESSAGES: json.dumps(OUTPUT),
                    sc.USAGE_INPUT_TOKENS: 12,
                },
            )
        ],
    )
    assert (
        trail(on_event)
        == trail(on_span)
        == [
            ("THOUGHT", "Look it up.", None, None, None),
            ("ACTION", None, "search", '{"q": "x"}', "c1"),
        ]
    )
    assert on_event.span["kind"] == "LLM"
    assert on_event.span["input_tokens"] == 12
    assert on_event.span["model"] == "gpt-test"
    assert json.loads(on_event.span["output"]) == OUTPUT


def test_span_attributes_win_over_the_details_event() -> None:
    other = [{"role": "assistant", "parts": [{"type": "reasoning", "content": "event"}]}]
    item = derive(
        {sc.OPERATION_NAME: "chat", sc.OUTPUT_MESSAGES: json.dumps(OUTPUT)},
        events=[(DETAILS, 5, {sc.OUTPUT_MESSAGES: json.dumps(other)})],
    )
    assert [s["text"] for s in item.steps if s["type"] == "THOUGHT"] == ["Look it up."]


def test_a_malformed_details_event_is_kept_and_listed() -> None:
    item = derive(
        {sc.OPERATION_NAME: "chat"}, events=[(DETAILS, 5, {sc.OUTPUT_MESSAGES: "[{broken"})]
    )
    assert item.steps == ()
    assert item.span["events"][0]["attributes"][sc.OUTPUT_MESSAGES] == "[{broken"
    assert any(sc.OUTPUT_MESSAGES in p for p in problems(item))


# ---------------------------------------------------------------- legacy indexed form


def test_legacy_indexed_prompt_and_completion_give_steps_and_fields() -> None:
    item = derive(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-test",
            "gen_ai.usage.prompt_tokens": 30,
            "gen_ai.usage.completion_tokens": 9,
            "gen_ai.usage.cache_read_input_tokens": 4,
            "llm.usage.total_tokens": 39,
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "Be terse.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": "Iceland?",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.reasoning_content": "Search first.",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "c1",
            "gen_ai.completion.0.tool_calls.0.name": "search",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"q": "Iceland"}',
            "gen_ai.completion.0.function_call.name": "legacy_fn",
            "gen_ai.completion.0.function_call.arguments": "{}",
        }
    )
    assert item.span["kind"] == "LLM"
    assert (item.span["provider"], item.span["model"]) == ("openai", "gpt-test")
    assert (item.span["input_tokens"], item.span["output_tokens"]) == (30, 9)
    assert trail(item) == [
        ("THOUGHT", "Search first.", None, None, None),
        ("ACTION", None, "search", '{"q": "Iceland"}', "c1"),
        ("ACTION", None, "legacy_fn", "{}", None),
    ]
    inputs = json.loads(item.span["input"])
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert item.span["attributes"]["gen_ai.usage.cache_read_input_tokens"] == 4
    assert problems(item) == []


def test_legacy_thinking_role_content_blocks_and_think_tags_are_thoughts() -> None:
    blocks = [
        {"type": "thinking", "thinking": "Block thought."},
        {"type": "text", "text": "Hi."},
        {"type": "tool_use", "id": "t1", "name": "calc", "input": {"x": 1}},
    ]
    item = derive(
        {
            sc.OPERATION_NAME: "chat",
            "gen_ai.completion.0.role": "thinking",
            "gen_ai.completion.0.content": "Role thought.",
            "gen_ai.completion.1.role": "assistant",
            "gen_ai.completion.1.content": json.dumps(blocks),
            "gen_ai.completion.2.role": "assistant",
            "gen_ai.completion.2.content": "<think>Tag thought.</think>Done.",
        }
    )
    assert trail(item) == [
        ("THOUGHT", "Role thought.", None, None, None),
        ("THOUGHT", "Block thought.", None, None, None),
        ("ACTION", None, "calc", '{"x": 1}', "t1"),
        ("THOUGHT", "Tag thought.", None, None, None),
    ]


def test_single_legacy_prompt_and_completion_strings() -> None:
    item = derive(
        {
            sc.OPERATION_NAME: "text_completion",
            "gen_ai.prompt": "Question: Iceland?\nThought:",
            "gen_ai.completion": " I should search.\nAction: search[Iceland]",
        }
    )
    assert [(s["type"], s["tool_name"]) for s in item.steps] == [
        ("THOUGHT", None),
        ("ACTION", "search"),
    ]
    assert json.loads(item.span["input"])[0]["parts"][0]["content"].startswith("Question")


def test_current_genai_messages_win_over_the_legacy_form() -> None:
    item = derive(
        {
            sc.OPERATION_NAME: "chat",
            sc.OUTPUT_MESSAGES: json.dumps(OUTPUT),
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.tool_calls.0.name": "other",
        }
    )
    assert [s["tool_name"] for s in item.steps if s["type"] == "ACTION"] == ["search"]


def test_huge_and_odd_indices_are_entries_not_list_sizes() -> None:
    start = time.perf_counter()
    item = derive(
        {
            sc.OPERATION_NAME: "chat",
            "gen_ai.prompt.99999999999.content": "far away",
            "gen_ai.prompt.__class__.content": "not an index",
            "gen_ai.prompt.-1.content": "negative",
            "gen_ai.prompt.٣.content": "arabic-indic digit",
            "gen_ai.completion.99999999999999999999.tool_calls.7777777777.name": "search",
        }
    )
    assert time.perf_counter() - start < 1.0
    assert json.loads(item.span["input"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "far away"}]}
    ]
    assert [s["tool_name"] for s in item.steps] == ["search"]
    attrs = item.span["attributes"]
    assert attrs["gen_ai.prompt.__class__.content"] == "not an index"
    assert attrs["gen_ai.prompt.-1.content"] == "negative"


def test_legacy_values_of_the_wrong_type_are_kept_and_listed() -> None:
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    item = derive(
        {
            sc.OPERATION_NAME: "chat",
            "gen_ai.prompt.0.content": 12345,
            "gen_ai.prompt.1.content": deep,
            "gen_ai.completion.0.content": "[{not json",
            "gen_ai.completion.0.tool_calls.0.name": ["a", "list"],
            "gen_ai.usage.prompt_tokens": "many",
        }
    )
    assert item.span["attributes"]["gen_ai.prompt.0.content"] == 12345
    assert item.span["attributes"]["gen_ai.completion.0.content"] == "[{not json"
    listed = problems(item)
    assert any("gen_ai.prompt: content" in p for p in listed)
    assert any("gen_ai.usage.prompt_tokens" in p for p in listed)
    assert [s["tool_name"] for s in item.steps] == ['["a", "list"]']
    assert item.span["input_tokens"] is None


def test_ten_thousand_legacy_messages_on_one_span() -> None:
    attributes: dict[str, Any] = {sc.OPERATION_NAME: "chat"}
    for i in range(10_000):
        attributes[f"gen_ai.prompt.{i}.role"] = "user"
        attributes[f"gen_ai.prompt.{i}.content"] = f"message {i}"
    attributes["gen_ai.completion.0.content"] = "<think>So many.</think>ok"
    start = time.perf_counter()
    item = derive(attributes)
    assert time.perf_counter() - start < 5.0
    inputs = json.loads(item.span["input"])
    assert len(inputs) == 10_000
    assert inputs[9_999]["parts"][0]["content"] == "message 9999"
    assert trail(item) == [("THOUGHT", "So many.", None, None, None)]


# ---------------------------------------------------------------- OpenLLMetry


def openllmetry_trace() -> list[Any]:
    trace_id = new_trace_id()
    root, tool, llm = new_span_id(), new_span_id(), new_span_id()
    return [
        record(
            trace_id=trace_id,
            span_id=root,
            name="research.agent",
            start=0,
            end=100,
            attributes={
                "traceloop.span.kind": "agent",
                "traceloop.entity.name": "research",
                "traceloop.entity.input": json.dumps({"args": ["Iceland?"], "kwargs": {}}),
                "traceloop.entity.output": json.dumps("About 387,758."),
                "traceloop.association.properties.session_id": "s-1",
                "traceloop.association.properties.user_id": "u-1",
            },
        ),
        record(
            trace_id=trace_id,
            span_id=llm,
            parent=root,
            name="openai.chat",
            start=10,
            end=20,
            attributes={
                "llm.request.type": "chat",
                "gen_ai.completion.0.tool_calls.0.name": "search",
                "gen_ai.completion.0.tool_calls.0.arguments": '{"query": "Iceland"}',
            },
        ),
        record(
            trace_id=trace_id,
            span_id=tool,
            parent=root,
            name="search.tool",
            start=30,
            end=40,
            attributes={
                "traceloop.span.kind": "tool",
                "traceloop.entity.name": "search",
                "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"query": "Iceland"}}),
                "traceloop.entity.output": json.dumps("387,758 (2024)"),
            },
        ),
    ]


def test_openllmetry_agent_tool_and_llm_spans_give_the_trail() -> None:
    items = derive_trace(openllmetry_trace())
    kinds = {item.span["name"]: item.span["kind"] for item in items}
    assert kinds == {"research.agent": "AGENT", "openai.chat": "LLM", "search.tool": "TOOL"}
    steps = sorted((s for item in items for s in item.steps), key=lambda s: s["ts_ns"])
    # The proposed call is dropped: the tool span executed it (same name and arguments).
    assert [(s["type"], s["text"], s["tool_name"], s["tool_args"]) for s in steps] == [
        ("ACTION", None, "search", '{"query": "Iceland"}'),
        ("OBSERVATION", "387,758 (2024)", None, None),
        ("ANSWER", "About 387,758.", None, None),
    ]
    assert items[0].trace_fields == {"session_id": "s-1", "user_id": "u-1"}
    assert items[0].span["input"] == '{"args": ["Iceland?"], "kwargs": {}}'


def test_openllmetry_tool_arguments_and_errors() -> None:
    positional = derive(
        {
            "traceloop.span.kind": "tool",
            "traceloop.entity.name": "calc",
            "traceloop.entity.input": json.dumps({"args": [{"x": 1}], "kwargs": {}}),
        },
        status="error",
        message="ZeroDivisionError: division by zero",
    )
    assert trail(positional) == [
        ("ACTION", None, "calc", '{"x": 1}', None),
        ("OBSERVATION", "ZeroDivisionError: division by zero", None, None, None),
    ]
    assert positional.steps[1]["is_error"]
    broken = derive({"traceloop.span.kind": "tool", "traceloop.entity.input": "{broken"})
    assert trail(broken)[0][2:4] == ("span", "{broken")
    assert any("traceloop.entity.input" in p for p in problems(broken))


def test_span_kind_precedence_with_traceloop_and_request_type() -> None:
    cases = [
        ({"traceloop.span.kind": "workflow", sc.OPERATION_NAME: "chat"}, "CHAIN"),
        ({"openinference.span.kind": "LLM", "traceloop.span.kind": "tool"}, "LLM"),
        ({sc.SPAN_KIND: "AGENT", "traceloop.span.kind": "tool"}, "AGENT"),
        ({"traceloop.span.kind": "nonsense", "llm.request.type": "embedding"}, "EMBEDDING"),
        ({"llm.request.type": "rerank"}, "RETRIEVER"),
        ({"traceloop.span.kind": "task"}, "CHAIN"),
    ]
    assert [derive(attrs).span["kind"] for attrs, _ in cases] == [kind for _, kind in cases]
    assert any("traceloop.span.kind" in p for p in problems(derive(cases[3][0])))


# ---------------------------------------------------------------- stored, never dropped


def test_bad_convention_input_is_stored_with_its_problems(sqlite_url: str) -> None:
    trace_id = new_trace_id()
    hostile = {
        **{f"gen_ai.prompt.{i}.content": i for i in range(10_000)},
        "gen_ai.prompt.99999999999.content": "far",
        "__class__": "x",
        "traceloop.span.kind": ["tool"],
        "traceloop.entity.input": "{broken",
        "traceloop.entity.output": json.dumps({"deep": [[[[[["bottom"]]]]]]}),
    }
    orphan = record(trace_id=trace_id, parent="ffffffffffffffff", name="orphan", attributes=hostile)
    engine = create_engine(sqlite_url)
    try:
        result = ingest_spans(engine, [orphan])
        with engine.connect() as conn:
            attrs = conn.execute(sa.select(Span.attributes)).scalar_one()
            steps = conn.execute(sa.select(Step.type)).scalars().all()
    finally:
        engine.dispose()
    assert result.problems == 1
    assert attrs["gen_ai.prompt.9999.content"] == 9999
    assert attrs["gen_ai.prompt.99999999999.content"] == "far"
    assert attrs["__class__"] == "x"
    assert attrs["traceloop.entity.input"] == "{broken"
    assert any("traceloop.span.kind" in p for p in attrs[PROBLEMS_KEY])
    assert steps == []
