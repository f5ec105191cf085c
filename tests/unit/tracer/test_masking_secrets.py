"""Secrets the built-in masking must catch, and ordinary text it must leave alone."""

from __future__ import annotations

import json
import uuid

import pytest

import lucidtrace as lt
from lucidtrace.tracer import _serialize
from lucidtrace.tracer.masking import Masker, mask_secrets
from tests.unit.tracer.conftest import Recorder

KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0KLMNOPqrst"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


@pytest.mark.parametrize(
    "text",
    [
        f"sess-{KEY}",
        f"tool-{KEY}",
        f"x{KEY}",
        f"key_{KEY}",
        json.dumps({"h": f"Authorization: Bearer\n{JWT}"}),
        json.dumps({"h": f"Authorization:Bearer\t{JWT}"}),
        json.dumps({"token_type": "Bearer", "access_token": JWT, "expires_in": 3600}),
        json.dumps({"refresh_token": "r-8f7a6b5c4d"}),
        json.dumps({"doc": json.dumps({"client_secret": "s3cr3t-value"})}),
        "Cfg(api_key='abcdef123456', password=\"hunter2hunter2\")",
    ],
)
def test_secrets_are_masked(text: str) -> None:
    masked = mask_secrets(text)
    assert "[REDACTED:" in masked
    for secret in (KEY, JWT, "r-8f7a6b5c4d", "s3cr3t-value", "abcdef123456", "hunter2hunter2"):
        assert secret[-12:] not in masked
    if text.startswith("{"):
        json.loads(masked)  # JSON stays JSON


@pytest.mark.parametrize(
    "text",
    [
        "The task-skills-for-the-agent-runtime-module are listed in the design document.",
        f"request {uuid.uuid4()} in trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "Please reset your password at the portal; the secret garden is a book.",
        json.dumps({"max_tokens": 512, "input_tokens": 10, "text": "tokens were counted"}),
        "disk-usage-report-for-the-production-cluster-2024",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_secrets(text) == text


def test_attributes_named_like_secrets_are_masked() -> None:
    masked = Masker().mask_attributes(
        {"http.request.header.authorization": "Basic dXNlcjpwYXNz", "app.api_key": "k", "n": "ok"}
    )
    assert masked == {
        "http.request.header.authorization": "[REDACTED:secret-value]",
        "app.api_key": "[REDACTED:secret-value]",
        "n": "ok",
    }


def test_a_secret_straddling_the_truncation_cut_is_masked_whole(recorder: Recorder) -> None:
    value = "x" * 90 + KEY
    with lt.span("s") as s:
        s.set_output(_serialize.to_json(value, max_chars=100))
        s.set_attribute("raw", _serialize.to_json(value, max_chars=100))
    text = json.dumps(recorder.attrs("s"))
    assert KEY[:10] not in text
    assert "truncated" in text
