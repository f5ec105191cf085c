"""Span ids used twice: in one request (same or another trace) and across requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from lucidtrace.store import SpanRecord
from lucidtrace.store.engine import create_engine
from lucidtrace.store.fallback import ingest_with_fallback
from lucidtrace.ui import ServerSettings, create_app

T0 = 1_700_000_000_000_000_000
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[TestClient, sa.Engine]]:
    engine = create_engine(database_url)
    app = create_app(ServerSettings(), engine=engine)
    with TestClient(app) as client:
        yield client, engine
    engine.dispose()


def wire_span(trace_id: str, span_id: str, name: str) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": None,
        "name": name,
        "kind": "INTERNAL",
        "start_ns": T0,
        "end_ns": T0 + 1000,
        "status_code": "unset",
        "status_message": None,
        "attributes": {},
        "events": [],
        "resource": {},
        "scope": None,
    }


def post_batch(client: TestClient, *spans: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/spans", json={"format": "lucidtrace.spans.v1", "spans": spans})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT trace_id, span_id, name FROM spans ORDER BY name"))
        return [(row[0], row[1], row[2]) for row in rows]


def otlp_body(*spans: tuple[str, str, str]) -> bytes:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for trace_id, span_id, name in spans:
        span = scope_spans.spans.add()
        span.trace_id = bytes.fromhex(trace_id)
        span.span_id = bytes.fromhex(span_id)
        span.name = name
        span.start_time_unix_nano = T0
        span.end_time_unix_nano = T0 + 1000
    return request.SerializeToString()


def test_a_span_id_of_another_trace_in_one_batch_is_refused(
    served: tuple[TestClient, sa.Engine],
) -> None:
    client, engine = served
    body = post_batch(
        client, wire_span("b" * 32, "b" * 16, "first"), wire_span("c" * 32, "b" * 16, "second")
    )
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["items"][0]["status"] == "stored"
    assert body["items"][1]["status"] == "rejected"
    assert body["items"][1]["error"] == (
        f"span id {'b' * 16} is already used by trace {'b' * 32} in this request"
    )
    assert stored(engine) == [("b" * 32, "b" * 16, "first")]
    assert client.get(f"/api/v1/traces/{'c' * 32}").status_code == 404


def test_an_exact_duplicate_in_one_batch_keeps_the_last_and_says_so(
    served: tuple[TestClient, sa.Engine],
) -> None:
    client, engine = served
    body = post_batch(
        client, wire_span("a" * 32, "a" * 16, "first"), wire_span("a" * 32, "a" * 16, "second")
    )
    assert (body["accepted"], body["rejected"], body["replaced"]) == (2, 0, 1)
    assert [item["status"] for item in body["items"]] == ["replaced", "stored"]
    assert "replaced by a later span" in body["items"][0]["error"]
    assert stored(engine) == [("a" * 32, "a" * 16, "second")]


def test_otlp_reports_the_same_in_partial_success(served: tuple[TestClient, sa.Engine]) -> None:
    client, engine = served
    body = otlp_body(
        ("1" * 32, "ab" * 8, "in-trace-1"),
        ("2" * 32, "ab" * 8, "in-trace-2"),
        ("3" * 32, "cd" * 8, "copy-1"),
        ("3" * 32, "cd" * 8, "copy-2"),
    )
    response = client.post("/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 1  # the replaced copy is not rejected
    message = answer.partial_success.error_message
    assert f"span id {'ab' * 8} is already used by trace {'1' * 32} in this request" in message
    assert f"span {'cd' * 8}: replaced by a later span" in message
    assert stored(engine) == [("3" * 32, "cd" * 8, "copy-2"), ("1" * 32, "ab" * 8, "in-trace-1")]


def test_a_span_id_stored_under_another_trace_is_refused_clearly(
    served: tuple[TestClient, sa.Engine],
) -> None:
    client, engine = served
    post_batch(client, wire_span("1" * 32, "a" * 16, "root"), wire_span("1" * 32, "b" * 16, "kid"))
    # Into a new trace, and into a trace already stored: neither moves the stored span.
    post_batch(client, wire_span("2" * 32, "c" * 16, "other"))
    for trace_id, new_id in (("2" * 32, "d" * 16), ("3" * 32, "e" * 16)):
        body = post_batch(
            client, wire_span(trace_id, "b" * 16, "moved"), wire_span(trace_id, new_id, "new")
        )
        assert (body["accepted"], body["rejected"]) == (1, 1)
        assert body["items"][0]["error"].startswith(
            f"span id {'b' * 16} is already stored under trace {'1' * 32}"
        )
        assert "IntegrityError" not in body["items"][0]["error"]
    names = {name: trace_id for trace_id, _, name in stored(engine)}
    assert names["kid"] == "1" * 32
    assert "moved" not in names
    assert names["new"] == "3" * 32  # the rest of the batch is stored
    trace = client.get(f"/api/v1/traces/{'1' * 32}").json()
    assert trace["trace"]["span_count"] == 2


def test_the_in_process_path_refuses_the_same(database_url: str) -> None:
    engine = create_engine(database_url)
    try:

        def record(trace_id: str, span_id: str, name: str) -> SpanRecord:
            return SpanRecord(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=None,
                name=name,
                kind="INTERNAL",
                start_ns=T0,
                end_ns=T0 + 1,
                status_code="unset",
                status_message=None,
                attributes={},
            )

        first, clash, old, new = (
            record("1" * 32, "a" * 16, "first"),
            record("2" * 32, "a" * 16, "clash"),
            record("1" * 32, "b" * 16, "old"),
            record("1" * 32, "b" * 16, "new"),
        )
        result = ingest_with_fallback(engine, [first, clash, old, new])
        assert result.stored == [first, new]
        assert result.replaced == [old]
        assert result.rejected == [
            (clash, f"span id {'a' * 16} is already used by trace {'1' * 32} in this request")
        ]
        again = ingest_with_fallback(engine, [record("3" * 32, "a" * 16, "later")])
        assert again.stored == []
        assert again.rejected[0][1].startswith(
            f"span id {'a' * 16} is already stored under trace {'1' * 32}"
        )
    finally:
        engine.dispose()
