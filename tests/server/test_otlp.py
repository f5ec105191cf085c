"""OTLP/HTTP ingest with the real OpenTelemetry exporter: the same rows as the in-process path."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from lucidtrace.store import DEFAULT_PROJECT_ID
from lucidtrace.tracer.exporters import StoreSpanExporter
from tests.server.conftest import LiveServer
from tests.server.spans import agent_spans, count_spans, project_rows

IN_PROCESS = "inprocess"


def store_in_process(server: LiveServer, spans: Sequence[ReadableSpan]) -> None:
    exporter = StoreSpanExporter(engine=server.engine, project_id=IN_PROCESS)
    assert exporter.export(spans) is SpanExportResult.SUCCESS


def otlp_json(spans: Sequence[ReadableSpan], *, snake_case: bool = False) -> dict[str, Any]:
    """The OTLP JSON form: the protobuf JSON mapping with ids in hex, as the spec says."""
    # camelCase with enums as numbers (the OTLP JSON spec), or snake_case with enum names.
    data = json_format.MessageToDict(
        encode_spans(spans),
        preserving_proto_field_name=snake_case,
        use_integers_for_enums=not snake_case,
    )
    names = (
        ("trace_id", "span_id", "parent_span_id")
        if snake_case
        else ("traceId", "spanId", "parentSpanId")
    )
    for resource_spans in data["resource_spans" if snake_case else "resourceSpans"]:
        for scope_spans in resource_spans["scope_spans" if snake_case else "scopeSpans"]:
            for span in scope_spans["spans"]:
                for name in names:
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
                if snake_case:  # int64 as JSON numbers this time
                    for field in ("start_time_unix_nano", "end_time_unix_nano"):
                        span[field] = int(span[field])
    return data


@pytest.mark.integration
@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_sdk_exporter_stores_the_rows_of_the_in_process_path(
    live_server: LiveServer, compression: Compression
) -> None:
    spans = agent_spans(traces=3)
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces", compression=compression, timeout=30
    )
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    store_in_process(live_server, spans)
    remote = project_rows(live_server.engine, DEFAULT_PROJECT_ID)
    local = project_rows(live_server.engine, IN_PROCESS)
    assert len(remote["spans"]) == len(spans) == 12
    assert len(remote["steps"]) > 0
    assert len(remote["documents"]) == 3
    assert remote == local
    kinds = {row["name"]: row["attributes"] for row in remote["spans"]}
    assert kinds["run 0"]["ints"] == [1, 2, 3]
    assert remote["spans"][0]["resource"]["service.name"] == "agent-svc"
    assert {row["scope"] for row in remote["spans"]} == {"tests.server"}


@pytest.mark.integration
@pytest.mark.parametrize("snake_case", [False, True])
@pytest.mark.parametrize("gzipped", [False, True])
def test_otlp_json_stores_the_rows_of_the_in_process_path(
    live_server: LiveServer, snake_case: bool, gzipped: bool
) -> None:
    spans = agent_spans(traces=2)
    body = json.dumps(otlp_json(spans, snake_case=snake_case)).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = httpx.post(f"{live_server.url}/v1/traces", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}  # no partial_success: everything stored
    store_in_process(live_server, spans)
    assert project_rows(live_server.engine, DEFAULT_PROJECT_ID) == project_rows(
        live_server.engine, IN_PROCESS
    )


def test_span_kinds_and_statuses_keep_the_sdk_names(live_server: LiveServer) -> None:
    spans = agent_spans(traces=2)
    body = encode_spans(spans).SerializeToString()
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    rows = project_rows(live_server.engine, DEFAULT_PROJECT_ID)["spans"]
    events = {row["name"]: row for row in rows}
    assert events["run 0"]["status"] in {"ok", "unset"}
    assert {row["status"] for row in rows if row["name"] == "execute_tool search"} == {
        "ok",
        "error",
    }
    error = next(row for row in rows if row["status"] == "error")
    assert error["status_message"] == "search backend down"
    assert any(event["name"] == "exception" for event in error["events"])


@pytest.mark.parametrize("as_json", [False, True])
def test_spans_that_cannot_be_stored_are_reported_as_partial_success(
    live_server: LiveServer, as_json: bool
) -> None:
    spans = agent_spans(traces=1)
    request = encode_spans(spans)
    bad = request.resource_spans[0].scope_spans[0].spans[0]
    bad.span_id = b"\x00" * 8  # an id no store can key a span by
    if as_json:
        data = json_format.MessageToDict(request)
        for span in data["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            for name in ("traceId", "spanId", "parentSpanId"):
                if name in span:
                    span[name] = base64.b64decode(span[name]).hex()
        content, media = json.dumps(data).encode(), "application/json"
    else:
        content, media = request.SerializeToString(), "application/x-protobuf"
    response = httpx.post(
        f"{live_server.url}/v1/traces", content=content, headers={"Content-Type": media}
    )
    assert response.status_code == 200
    if as_json:
        partial = response.json()["partialSuccess"]
        assert int(partial["rejectedSpans"]) == 1
        message = partial["errorMessage"]
    else:
        parsed = ExportTraceServiceResponse.FromString(response.content)
        assert parsed.partial_success.rejected_spans == 1
        message = parsed.partial_success.error_message
    assert "all-zero" in message
    assert count_spans(live_server.engine) == len(spans) - 1


def test_resending_a_batch_changes_nothing(live_server: LiveServer) -> None:
    spans = agent_spans(traces=2)
    body = encode_spans(spans).SerializeToString()
    url = f"{live_server.url}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    first = project_rows(live_server.engine, DEFAULT_PROJECT_ID)
    for _ in range(3):
        assert httpx.post(url, content=body, headers=headers).status_code == 200
    assert project_rows(live_server.engine, DEFAULT_PROJECT_ID) == first
    assert count_spans(live_server.engine) == len(spans)


def test_a_hand_written_otlp_json_request_is_read_as_the_spec_says(
    live_server: LiveServer,
) -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "hand.written", "version": "1"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "parentSpanId": "",
                                "name": "call tool",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": 1700000000500000000,
                                "attributes": [
                                    {"key": "s", "value": {"stringValue": "x"}},
                                    {"key": "big", "value": {"intValue": "9007199254740993"}},
                                    {"key": "n", "value": {"intValue": 7}},
                                    {"key": "d", "value": {"doubleValue": 1.5}},
                                    {"key": "b", "value": {"boolValue": True}},
                                    {
                                        "key": "a",
                                        "value": {
                                            "arrayValue": {
                                                "values": [{"stringValue": "p"}, {"intValue": "2"}]
                                            }
                                        },
                                    },
                                    {
                                        "key": "k",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "inner", "value": {"boolValue": False}}
                                                ]
                                            }
                                        },
                                    },
                                    {"key": "y", "value": {"bytesValue": "aGk="}},
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": "1700000000100000000",
                                        "name": "note",
                                        "attributes": [{"key": "e", "value": {"intValue": "1"}}],
                                    }
                                ],
                                "status": {"code": 2, "message": "boom"},
                                "unknownFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=json.dumps(body),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    [span] = project_rows(live_server.engine, DEFAULT_PROJECT_ID)["spans"]
    assert (span["trace_id"], span["span_id"], span["parent_span_id"]) == (trace_id, span_id, None)
    assert (span["start_ns"], span["end_ns"]) == (1700000000000000000, 1700000000500000000)
    assert (span["status"], span["status_message"]) == ("error", "boom")
    assert span["scope"] == "hand.written"
    assert span["resource"] == {"service.name": "svc"}
    attributes = span["attributes"]
    assert attributes["s"] == "x"
    assert attributes["big"] == 9007199254740993
    assert attributes["n"] == 7
    assert attributes["d"] == 1.5
    assert attributes["b"] is True
    assert attributes["a"] == ["p", 2]
    assert attributes["k"] == {"inner": False}
    assert attributes["y"] == "hi"  # bytes that are UTF-8 are stored as text
    [event] = span["events"]
    assert event["name"] == "note"
    assert event["attributes"] == {"e": 1}
