"""Limits, malformed input and overload: the right status and message, and nothing stored."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from lucidtrace.store import record_from_readable_span
from lucidtrace.store.wire import BATCH_PATH, batch_to_wire
from lucidtrace.ui import ServerSettings
from lucidtrace.ui.otlp import LimitError, PayloadError
from lucidtrace.ui.routes.ingest import decompress
from tests.server.conftest import LiveServer
from tests.server.spans import agent_spans, count_spans
from tests.server.test_otlp import otlp_json

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def server_settings(database_url: str) -> ServerSettings:
    return ServerSettings(
        database_url=database_url,
        max_body_bytes=64 * 1024,
        max_decompressed_bytes=256 * 1024,
        max_spans_per_request=6,
        max_attributes_per_span=20,
        max_attribute_depth=3,
    )


def post(server: LiveServer, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=30)


def assert_refused(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    for word in words:
        assert word in body["detail"]
    return body


def protobuf_of(traces: int = 1) -> bytes:
    return encode_spans(agent_spans(traces=traces)).SerializeToString()


def test_a_request_within_the_limits_is_stored(live_server: LiveServer) -> None:
    assert post(live_server, "/v1/traces", protobuf_of(1), PROTOBUF).status_code == 200
    assert count_spans(live_server.engine) == 4


def test_too_many_spans(live_server: LiveServer) -> None:
    body = assert_refused(
        post(live_server, "/v1/traces", protobuf_of(2), PROTOBUF),
        400,
        "max_spans_per_request",
        "(6)",
    )
    assert (body["limit"], body["value"]) == ("max_spans_per_request", 6)
    records = [record_from_readable_span(s) for s in agent_spans(traces=2)]
    batch = json.dumps(batch_to_wire(records))
    assert_refused(post(live_server, BATCH_PATH, batch, JSON), 400, "max_spans_per_request")
    assert count_spans(live_server.engine) == 0


def test_too_many_attributes(live_server: LiveServer) -> None:
    request = encode_spans(agent_spans(traces=1))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for index in range(25):
        attribute = span.attributes.add()
        attribute.key = f"extra.{index}"
        attribute.value.int_value = index
    body = assert_refused(
        post(live_server, "/v1/traces", request.SerializeToString(), PROTOBUF),
        400,
        "max_attributes_per_span",
    )
    assert body["value"] == 20
    assert count_spans(live_server.engine) == 0


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(depth - 1):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def test_attribute_nesting_deeper_than_the_limit(live_server: LiveServer) -> None:
    data = otlp_json(agent_spans(traces=1))
    span = data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"].append({"key": "fine", "value": nested(3)})
    assert post(live_server, "/v1/traces", json.dumps(data), JSON).status_code == 200
    assert count_spans(live_server.engine) == 4
    span["attributes"].append({"key": "deep", "value": nested(4)})
    body = assert_refused(
        post(live_server, "/v1/traces", json.dumps(data), JSON), 400, "max_attribute_depth"
    )
    assert body["value"] == 3
    [record] = [record_from_readable_span(s) for s in agent_spans(traces=1)][:1]
    wire = batch_to_wire([record])
    wire["spans"][0]["attributes"]["deep"] = [[[["x"]]]]
    assert_refused(post(live_server, BATCH_PATH, json.dumps(wire), JSON), 400, "max_attribute")
    assert count_spans(live_server.engine) == 4  # the first request's spans, nothing more


def test_body_over_the_limit_by_content_length_and_while_reading(live_server: LiveServer) -> None:
    big = b"\x0a" * (65 * 1024)
    body = assert_refused(post(live_server, "/v1/traces", big, PROTOBUF), 413, "max_body_bytes")
    assert body["value"] == 64 * 1024

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(65):
            yield b"\x0a" * 1024

    assert_refused(post(live_server, "/v1/traces", chunks(), PROTOBUF), 413, "max_body_bytes")
    assert count_spans(live_server.engine) == 0


def gzip_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1024 * 1024)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.flush()])


def test_a_gzip_bomb_is_refused_without_inflating_it(live_server: LiveServer) -> None:
    bomb = gzip_bomb(64 * 1024 * 1024)  # 64 MiB of zeros in about 64 KiB
    assert len(bomb) < 64 * 1024
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    body = assert_refused(
        post(live_server, "/v1/traces", bomb, headers), 413, "max_decompressed_bytes"
    )
    assert body["value"] == 256 * 1024
    assert count_spans(live_server.engine) == 0


def test_decompression_stops_at_the_limit() -> None:
    with pytest.raises(LimitError) as caught:
        decompress(gzip_bomb(8 * 1024 * 1024), 1024)
    assert caught.value.status == 413
    two_members = gzip.compress(b"abc") + gzip.compress(b"def")
    assert decompress(two_members, 100) == b"abcdef"
    with pytest.raises(PayloadError, match="ends before"):
        decompress(gzip.compress(b"x" * 1000)[:-12], 10_000)


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"\x0a\xff\xff\xff\x0f", PROTOBUF, 400, ["malformed protobuf"]),
        (b"{not json", JSON, 400, ["malformed JSON"]),
        (b"[1, 2]", JSON, 400, ["resourceSpans"]),
        (
            json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}),
            JSON,
            400,
            ["not hex"],
        ),
        (b"plain", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, ["malformed gzip"]),
        (b"x", {"Content-Type": "text/plain"}, 415, ["unsupported content type"]),
        (b"x", {**PROTOBUF, "Content-Encoding": "br"}, 415, ["unsupported content encoding"]),
    ],
)
def test_malformed_requests_are_refused_with_a_reason(
    live_server: LiveServer, body: Any, headers: dict[str, str], status: int, words: list[str]
) -> None:
    assert_refused(post(live_server, "/v1/traces", body, headers), status, *words)
    assert count_spans(live_server.engine) == 0


def test_truncated_protobuf_and_gzip_store_nothing(live_server: LiveServer) -> None:
    whole = protobuf_of(1)
    assert_refused(post(live_server, "/v1/traces", whole[: len(whole) // 2], PROTOBUF), 400)
    squeezed = gzip.compress(whole)[:-20]
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    assert_refused(post(live_server, "/v1/traces", squeezed, headers), 400, "gzip")
    assert count_spans(live_server.engine) == 0


def test_malformed_batches_are_refused(live_server: LiveServer) -> None:
    assert_refused(post(live_server, BATCH_PATH, b"{", JSON), 400, "malformed JSON")
    assert_refused(
        post(live_server, BATCH_PATH, json.dumps({"format": "other"}), JSON), 400, "format"
    )
    records = [record_from_readable_span(s) for s in agent_spans(traces=1)]
    wire = batch_to_wire(records)
    wire["spans"][1]["span_id"] = "xyz"
    assert_refused(post(live_server, BATCH_PATH, json.dumps(wire), JSON), 400, "spans[1].span_id")
    assert_refused(post(live_server, BATCH_PATH, b"x", PROTOBUF), 415)
    assert count_spans(live_server.engine) == 0


def test_overload_is_answered_503_with_retry_after_at_once(live_server: LiveServer) -> None:
    gate = live_server.app.state.ingest_gate
    held = 0
    while gate.try_acquire():
        held += 1
    assert held == live_server.settings.max_concurrent_ingest
    try:
        response = post(live_server, "/v1/traces", protobuf_of(1), PROTOBUF)
        assert_refused(response, 503, "max_concurrent_ingest")
        assert response.headers["Retry-After"] == str(live_server.settings.retry_after_seconds)
        assert count_spans(live_server.engine) == 0
    finally:
        for _ in range(held):
            gate.release()
    assert post(live_server, "/v1/traces", protobuf_of(1), PROTOBUF).status_code == 200
    assert count_spans(live_server.engine) == 4
    assert gate.busy == 0
