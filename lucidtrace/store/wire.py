"""lucidtrace's own batch format: spans as JSON, sent by the HTTP exporter to the server.

A batch is ``{"format": "lucidtrace.spans.v1", "spans": [span, ...]}`` where a span is the JSON
form of a :class:`~lucidtrace.store.ingest.SpanRecord` (ids in lowercase hex, times in Unix
nanoseconds, attribute values as JSON). The server posts it to :data:`BATCH_PATH`; like OTLP it
goes through the one ingest mapper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lucidtrace.store._records import STATUS_CODES, SpanEvent, SpanRecord

__all__ = [
    "BATCH_PATH",
    "WIRE_FORMAT",
    "WireFormatError",
    "batch_from_wire",
    "batch_to_wire",
    "record_from_wire",
    "record_to_wire",
]

WIRE_FORMAT = "lucidtrace.spans.v1"
"""The ``format`` value of a batch."""

BATCH_PATH = "/api/v1/spans"
"""Where the server accepts batches in this format."""

_HEX = frozenset("0123456789abcdef")


class WireFormatError(ValueError):
    """A batch or span that is not in the format; the message names the offending field."""


def record_to_wire(record: SpanRecord) -> dict[str, Any]:
    """The JSON form of one span."""
    return {
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "name": record.name,
        "kind": record.kind,
        "start_ns": record.start_ns,
        "end_ns": record.end_ns,
        "status_code": record.status_code,
        "status_message": record.status_message,
        "attributes": _json_mapping(record.attributes),
        "events": [
            {
                "name": event.name,
                "ts_ns": event.ts_ns,
                "attributes": _json_mapping(event.attributes),
            }
            for event in record.events
        ],
        "resource": _json_mapping(record.resource),
        "scope": record.scope,
    }


def batch_to_wire(records: Sequence[SpanRecord]) -> dict[str, Any]:
    """A batch of spans in the format."""
    return {"format": WIRE_FORMAT, "spans": [record_to_wire(record) for record in records]}


def batch_from_wire(body: Any) -> list[SpanRecord]:
    """The spans of a decoded JSON batch.

    Raises:
        WireFormatError: The batch or one of its spans is malformed (the message says where).
    """
    if not isinstance(body, Mapping):
        raise WireFormatError("a batch must be a JSON object with 'format' and 'spans'")
    if body.get("format") != WIRE_FORMAT:
        raise WireFormatError(f"'format' must be {WIRE_FORMAT!r}, got {body.get('format')!r}")
    spans = body.get("spans")
    if not isinstance(spans, list):
        raise WireFormatError("'spans' must be a list")
    return [record_from_wire(span, where=f"spans[{index}]") for index, span in enumerate(spans)]


def record_from_wire(span: Any, *, where: str = "span") -> SpanRecord:
    """One span from its JSON form.

    Raises:
        WireFormatError: A field is missing or has the wrong type (the message names it).
    """
    if not isinstance(span, Mapping):
        raise WireFormatError(f"{where} must be an object")
    parent = span.get("parent_span_id")
    status = _text(span, "status_code", where)
    if status not in STATUS_CODES:
        raise WireFormatError(f"{where}.status_code must be one of {STATUS_CODES}, got {status!r}")
    events = span.get("events", [])
    if not isinstance(events, list):
        raise WireFormatError(f"{where}.events must be a list")
    return SpanRecord(
        trace_id=_hex_id(span, "trace_id", 32, where),
        span_id=_hex_id(span, "span_id", 16, where),
        parent_span_id=None if parent is None else _hex_id(span, "parent_span_id", 16, where),
        name=_text(span, "name", where),
        kind=_text(span, "kind", where),
        start_ns=_time(span, "start_ns", where),
        end_ns=_time(span, "end_ns", where),
        status_code=status,
        status_message=_optional_text(span, "status_message", where),
        attributes=_mapping(span, "attributes", where),
        events=tuple(
            SpanEvent(
                name=_text(event, "name", f"{where}.events[{index}]"),
                ts_ns=_time(event, "ts_ns", f"{where}.events[{index}]"),
                attributes=_mapping(event, "attributes", f"{where}.events[{index}]"),
            )
            if isinstance(event, Mapping)
            else _fail(f"{where}.events[{index}] must be an object")
            for index, event in enumerate(events)
        ),
        resource=_mapping(span, "resource", where),
        scope=_optional_text(span, "scope", where),
    )


def _fail(message: str) -> SpanEvent:
    raise WireFormatError(message)


def _hex_id(span: Mapping[str, Any], key: str, digits: int, where: str) -> str:
    value = span.get(key)
    if not isinstance(value, str) or len(value) != digits or not set(value) <= _HEX:
        raise WireFormatError(f"{where}.{key} must be {digits} lowercase hex digits")
    if set(value) == {"0"}:
        raise WireFormatError(f"{where}.{key} must not be all zeros")
    return value


def _text(span: Mapping[str, Any], key: str, where: str) -> str:
    value = span.get(key)
    if not isinstance(value, str):
        raise WireFormatError(f"{where}.{key} must be a string")
    return value


def _optional_text(span: Mapping[str, Any], key: str, where: str) -> str | None:
    value = span.get(key)
    if value is not None and not isinstance(value, str):
        raise WireFormatError(f"{where}.{key} must be a string or null")
    return value


def _time(span: Mapping[str, Any], key: str, where: str) -> int:
    value = span.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise WireFormatError(f"{where}.{key} must be a non-negative integer (Unix nanoseconds)")
    return value


def _mapping(span: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = span.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(name, str) for name in value):
        raise WireFormatError(f"{where}.{key} must be an object")
    return dict(value)


def _json_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: list(value) if isinstance(value, tuple) else value for key, value in values.items()
    }
