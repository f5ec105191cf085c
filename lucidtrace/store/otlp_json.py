"""A stored trace as an OTLP/JSON ``ExportTraceServiceRequest``.

The document follows the OTLP JSON mapping (``resourceSpans`` → ``scopeSpans`` → ``spans``):
hex trace and span ids, times as decimal strings of Unix nanoseconds, attributes as
``{"key": ..., "value": {"stringValue" | "intValue" | "doubleValue" | "boolValue" |
"arrayValue" | "kvlistValue" | "bytesValue": ...}}``. Spans are grouped by their resource and
instrumentation scope, each span with its raw attributes, events and status, so the export can
be sent to any OTLP collector (``POST /v1/traces`` with ``Content-Type: application/json``) or
read back with ``google.protobuf.json_format``.

lucidtrace stores its own span kind (``LLM``, ``TOOL``, ...), not the OpenTelemetry one: the
export gives ``SPAN_KIND_UNSPECIFIED`` and carries the lucidtrace kind as the attribute
``lucidtrace.span.kind``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from lucidtrace.store.models import DEFAULT_PROJECT_ID, Span
from lucidtrace.store.repository import get_trace

__all__ = ["KIND_ATTRIBUTE", "attribute_value", "export_trace_otlp", "span_to_otlp"]

KIND_ATTRIBUTE = "lucidtrace.span.kind"
"""Attribute carrying lucidtrace's span kind in an OTLP export."""

_STATUS_CODES = {"unset": 0, "ok": 1, "error": 2}
_INT64 = range(-(2**63), 2**63)


def attribute_value(value: Any) -> dict[str, Any]:  # noqa: PLR0911 - one return per type
    """One stored attribute value as an OTLP ``AnyValue`` in the JSON mapping.

    Stored bytes (``{"base64": ...}``) become ``bytesValue``; other objects a ``kvlistValue``;
    integers outside int64 and non-finite numbers are sent as strings.
    """
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if value in _INT64:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"stringValue": str(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [attribute_value(item) for item in value]}}
    if isinstance(value, Mapping):
        if set(value) == {"base64"} and isinstance(value["base64"], str):
            return {"bytesValue": value["base64"]}
        return {"kvlistValue": {"values": _key_values(value)}}
    if value is None:
        return {}
    return {"stringValue": json.dumps(value, default=str)}


def _key_values(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": str(key), "value": attribute_value(val)} for key, val in attributes.items()]


def span_to_otlp(span: Span) -> dict[str, Any]:
    """One stored span as an OTLP JSON ``Span``."""
    attributes = dict(span.attributes or {})
    attributes.setdefault(KIND_ATTRIBUTE, span.kind)
    status: dict[str, Any] = {"code": _STATUS_CODES.get(span.status, 0)}
    if span.status_message:
        status["message"] = span.status_message
    result: dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": attributes.get("lucidtrace.ingest.span_name", span.name),
        "kind": 0,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": _key_values(attributes),
        "events": [
            {
                "timeUnixNano": str(event.get("ts_ns", span.start_ns)),
                "name": str(event.get("name", "")),
                "attributes": _key_values(event.get("attributes") or {}),
            }
            for event in span.events or []
            if isinstance(event, Mapping)
        ],
        "status": status,
    }
    if span.parent_span_id:
        result["parentSpanId"] = span.parent_span_id
    return result


def export_trace_otlp(
    session: Session, *, project_id: str = DEFAULT_PROJECT_ID, trace_id: str
) -> dict[str, Any] | None:
    """A trace's spans as an OTLP JSON ``ExportTraceServiceRequest``; None when unknown.

    Args:
        session: An open session.
        project_id: The project the trace belongs to.
        trace_id: The full trace id (32 hex digits).
    """
    detail = get_trace(session, project_id=project_id, trace_id=trace_id)
    if detail is None:
        return None
    groups: dict[str, dict[str | None, list[dict[str, Any]]]] = {}
    resources: dict[str, dict[str, Any]] = {}
    for span in detail.spans:
        resource = dict(span.resource or {})
        key = json.dumps(resource, sort_keys=True, default=str)
        resources.setdefault(key, resource)
        groups.setdefault(key, {}).setdefault(span.scope, []).append(span_to_otlp(span))
    resource_spans = []
    for key, scopes in groups.items():
        resource_spans.append(
            {
                "resource": {"attributes": _key_values(resources[key])},
                "scopeSpans": [
                    {"scope": {"name": scope or ""}, "spans": spans}
                    for scope, spans in scopes.items()
                ],
            }
        )
    return {"resourceSpans": resource_spans}
