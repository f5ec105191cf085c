"""OTLP JSON export: read back with protobuf's json_format into ExportTraceServiceRequest."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import sqlalchemy as sa
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from sqlalchemy.orm import Session

from lucidtrace.store import export_trace_otlp, get_trace
from tests.query.traces import agent_trace, store


def _hex_ids_to_base64(document: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping expects base64 for bytes."""
    converted = copy.deepcopy(document)
    for resource in converted["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return converted


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "int_value":
        return value.int_value
    if kind == "bytes_value":
        return {"base64": base64.b64encode(value.bytes_value).decode()}
    return getattr(value, kind) if kind else None


def test_export_round_trips_through_protobuf(engine: sa.Engine, db: Session) -> None:
    records = agent_trace(
        name="exported",
        status="error",
        extra_attributes={
            "nested": {"a": [1, 2.5, "x"], "b": True},
            "raw": b"\xff\x00\x01",
            "big": 2**70,
        },
    )
    trace_id = store(engine, records)
    document = export_trace_otlp(db, trace_id=trace_id)
    assert document is not None
    json.dumps(document)  # plain JSON

    request = json_format.Parse(
        json.dumps(_hex_ids_to_base64(document)), ExportTraceServiceRequest()
    )
    spans = {
        span.span_id.hex(): (resource, scope, span)
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    stored = {span.span_id: span for span in get_trace(db, trace_id=trace_id).spans}  # type: ignore[union-attr]
    assert set(spans) == set(stored) == {record.span_id for record in records}
    for record in records:
        resource, scope, span = spans[record.span_id]
        assert span.trace_id.hex() == trace_id
        assert span.name == record.name
        assert (span.start_time_unix_nano, span.end_time_unix_nano) == (
            record.start_ns,
            record.end_ns,
        )
        assert (span.parent_span_id.hex() or None) == record.parent_span_id
        assert scope.scope.name == record.scope
        assert {kv.key: _plain(kv.value) for kv in resource.resource.attributes} == dict(
            record.resource
        )
        attributes = {kv.key: _plain(kv.value) for kv in span.attributes}
        expected = {
            **stored[record.span_id].attributes,
            "lucidtrace.span.kind": stored[record.span_id].kind,
        }
        if "big" in expected:
            expected["big"] = str(expected["big"])  # beyond int64: sent as text
        assert attributes == expected
        assert [(e.name, e.time_unix_nano) for e in span.events] == [
            (e.name, e.ts_ns) for e in record.events
        ]
    root = spans[records[0].span_id][2]
    assert root.status.code == 2  # STATUS_CODE_ERROR
    root_attributes = {kv.key: _plain(kv.value) for kv in root.attributes}
    assert root_attributes["nested"] == {"a": [1, 2.5, "x"], "b": True}
    assert root_attributes["raw"] == {"base64": base64.b64encode(b"\xff\x00\x01").decode()}
    assert root_attributes["big"] == str(2**70)  # beyond int64: kept, as text
    thought = root.events[0]
    assert {kv.key: _plain(kv.value) for kv in thought.attributes} == {
        "lucidtrace.thought.text": "I should look it up in the atlas."
    }


def test_unknown_trace_exports_nothing(db: Session) -> None:
    assert export_trace_otlp(db, trace_id="f" * 32) is None
