"""Masking: secrets never reach the exporter, JSON stays JSON, broken masks fail closed."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace as trace_api

import lucidtrace as lt
from lucidtrace.tracer import semconv
from lucidtrace.tracer.masking import MASK_ERROR, SECRET_KINDS, Masker, mask_secrets
from tests.unit.tracer.conftest import Recorder

OPENAI = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ANTHROPIC = "sk-ant-api03-Zy9xWv8uTs7rQp6oNm5lKj4iHg3fEd2c"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
ALL_SECRETS = (OPENAI, ANTHROPIC, AWS_ID, AWS_SECRET, JWT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key={OPENAI}", "key=[REDACTED:openai-key]"),
        ("sk-abcdefghijklmnopqrstuvwxyz0123", "[REDACTED:openai-key]"),
        (f"{ANTHROPIC} and more", "[REDACTED:anthropic-key] and more"),
        (f"id {AWS_ID}.", "id [REDACTED:aws-access-key-id]."),
        ("ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws-access-key-id]"),
        (
            f"aws_secret_access_key = {AWS_SECRET}",
            "aws_secret_access_key = [REDACTED:aws-secret-access-key]",
        ),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED:bearer-token]"),
        ("ghp_" + "a1" * 18, "[REDACTED:github-token]"),
        ("AIza" + "B" * 35, "[REDACTED:google-api-key]"),
        ("xoxb-123456789012-abcdef", "[REDACTED:slack-token]"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "[REDACTED:private-key]",
        ),
    ],
)
def test_default_patterns(text: str, expected: str) -> None:
    assert mask_secrets(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "task-abcdefghijklmnopqrstuvwxyz",  # "sk-" inside a word
        "the bearer of good news arrived",
        "AKIA is a prefix but this is too short: AKIA1234",
        f"a 40-char value with no label: {AWS_SECRET}",
        "I need Iceland's population, then its square.",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_secrets(text) == text


def test_every_kind_is_listed() -> None:
    assert set(SECRET_KINDS) >= {
        "openai-key",
        "anthropic-key",
        "aws-access-key-id",
        "aws-secret-access-key",
        "bearer-token",
    }


def test_json_documents_stay_valid_json() -> None:
    document = {
        "headers": {"Authorization": f"Bearer {JWT}"},
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "nested": [{"key": OPENAI}, json.dumps({"inner": ANTHROPIC})],
    }
    for text in (json.dumps(document), json.dumps(json.dumps(document))):
        masked = mask_secrets(text)
        json.loads(masked)
        assert not any(secret in masked for secret in ALL_SECRETS)


def test_a_user_mask_that_breaks_json_is_applied_to_the_leaves() -> None:
    masker = Masker([lambda s: s.replace("ana@example.com", 'EMAIL"')])
    text = json.dumps({"to": "ana@example.com", "n": 1})
    assert json.loads(masker.mask_text(text)) == {"to": 'EMAIL"', "n": 1}


def test_a_key_in_tool_args_thought_and_nested_json_never_reaches_the_exporter(
    recorder: Recorder,
) -> None:
    @lt.traced(kind="agent")
    def agent(api_key: str) -> str:
        lt.thought(f"I'll call the API with {OPENAI}")
        with lt.tool_call("http", {"headers": {"Authorization": f"Bearer {JWT}"}}) as call:
            call.set_result({"config": {"aws": {"aws_secret_access_key": AWS_SECRET}}})
        lt.retrieval("creds", documents=[{"id": "d", "content": f"key {ANTHROPIC} id {AWS_ID}"}])
        return lt.answer(f"done with {OPENAI}")

    agent(OPENAI)
    spans = recorder.spans
    assert len(spans) == 3
    for span in spans:
        dump = repr(dict(span.attributes or {})) + repr(
            [dict(e.attributes or {}) for e in span.events]
        )
        assert not any(secret in dump for secret in ALL_SECRETS), dump
        for key, value in (span.attributes or {}).items():
            if key in (
                semconv.INPUT,
                semconv.OUTPUT,
                semconv.TOOL_CALL_ARGUMENTS,
                semconv.TOOL_CALL_RESULT,
                semconv.RETRIEVAL_DOCUMENTS,
            ):
                json.loads(str(value))
    events = recorder.named("agent").events
    assert dict(events[0].attributes or {})[semconv.THOUGHT_TEXT] == (
        "I'll call the API with [REDACTED:openai-key]"
    )


def test_third_party_spans_exception_text_and_status_are_masked(recorder: Recorder) -> None:
    tracer = trace_api.get_tracer("third.party")

    def client_call() -> None:
        with tracer.start_as_current_span("client.call") as span:
            span.set_attribute("http.request.header.authorization", f"Bearer {JWT}")
            raise PermissionError(f"rejected key {OPENAI}")

    with pytest.raises(PermissionError):
        client_call()
    third = recorder.named("client.call")
    dump = repr(dict(third.attributes or {})) + repr(
        [dict(e.attributes or {}) for e in third.events]
    )
    dump += third.status.description or ""
    assert OPENAI not in dump
    assert JWT not in dump
    assert "[REDACTED:openai-key]" in (third.status.description or "")


def test_user_mask_callables_run_after_the_defaults() -> None:
    seen: list[str] = []

    def hide_emails(text: str) -> str:
        seen.append(text)
        return text.replace("ana@example.com", "[EMAIL]")

    recorder = _configure(mask=[hide_emails])
    lt.thought(f"mail ana@example.com with {OPENAI}")
    attrs = dict(recorder.named("reasoning").events[0].attributes or {})
    assert attrs[semconv.THOUGHT_TEXT] == "mail [EMAIL] with [REDACTED:openai-key]"
    assert all(OPENAI not in text for text in seen)


def test_a_mask_that_raises_fails_closed_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("bug in mask")

    recorder = _configure(mask=broken)
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        lt.thought("private thought")
        lt.thought("another")
        spans = recorder.spans
    assert len(spans) == 2
    for span in spans:
        assert span.name == MASK_ERROR
        assert dict(span.events[0].attributes or {})[semconv.THOUGHT_TEXT] == MASK_ERROR
    assert caplog.text.count("raised; the field is stored as") == 1


def test_defaults_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _configure(mask_defaults=False)
    lt.thought(OPENAI)
    assert (
        dict(recorder.named("reasoning").events[0].attributes or {})[semconv.THOUGHT_TEXT] == OPENAI
    )
    lt.shutdown()
    monkeypatch.setenv("LUCIDTRACE_MASK_DEFAULTS", "false")
    recorder = _configure()
    lt.thought(OPENAI)
    assert (
        dict(recorder.named("reasoning").events[0].attributes or {})[semconv.THOUGHT_TEXT] == OPENAI
    )


def test_mask_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callables"):
        lt.configure(exporter=_exporter(), mask=["not callable"])  # type: ignore[list-item]


def _exporter():  # type: ignore[no-untyped-def]
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    return InMemorySpanExporter()


def _configure(**kwargs: object) -> Recorder:
    exporter = _exporter()
    lt.configure(exporter=exporter, **kwargs)  # type: ignore[arg-type]
    return Recorder(exporter)
