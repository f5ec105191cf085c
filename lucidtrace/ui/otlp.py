"""OTLP/HTTP trace requests (protobuf and JSON) to :class:`~lucidtrace.store.SpanRecord` values.

The records carry the values the in-process path (``record_from_readable_span``) gives for the
same spans: lowercase hex ids, the SDK's span kind names (``INTERNAL``, ``CLIENT``, ...), status
``unset`` / ``ok`` / ``error``, arrays as tuples, resource attributes and the scope name, so the
stored rows are the same whichever way a span arrived.

The JSON form is the OTLP JSON mapping: ids in hex (not base64), camelCase or snake_case field
names, 64-bit integers as strings or numbers, enums as numbers or names, unknown fields ignored.

Limits (spans per request, attributes per span / event / resource, nesting depth of a value) are
checked while decoding: a request over one raises :class:`LimitError` and nothing of it is
stored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# protobuf ships no type information (types-protobuf is not a dependency).
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from lucidtrace.store import SpanEvent, SpanRecord

__all__ = [
    "SPAN_KINDS",
    "LimitError",
    "Limits",
    "PayloadError",
    "check_records",
    "decode_json",
    "decode_protobuf",
    "encode_response",
    "records_from_request",
]

SPAN_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
"""OTLP ``SPAN_KIND_*`` numbers to the SDK's ``SpanKind`` names (unspecified reads as internal,
as the OTLP specification says)."""

_STATUS = {0: "unset", 1: "ok", 2: "error"}
_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


class PayloadError(ValueError):
    """A body that is not a valid request (the message says what is wrong)."""


class LimitError(ValueError):
    """A request over one of the server's limits.

    Attributes:
        limit: The setting's name (``max_spans_per_request``, ...).
        value: The setting's value.
        status: The HTTP status to answer (413 for sizes, 400 otherwise).
    """

    def __init__(self, message: str, *, limit: str, value: int, status: int = 400) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.status = status


@dataclass(frozen=True)
class Limits:
    """The per-request limits the decoders enforce."""

    max_spans: int
    max_attributes: int
    max_depth: int

    def spans(self, count: int) -> None:
        """Raise when ``count`` spans are too many."""
        if count > self.max_spans:
            raise LimitError(
                f"too many spans in one request: {count} > max_spans_per_request "
                f"({self.max_spans}); send smaller batches",
                limit="max_spans_per_request",
                value=self.max_spans,
            )

    def attributes(self, count: int, where: str) -> None:
        """Raise when ``count`` attributes of ``where`` are too many."""
        if count > self.max_attributes:
            raise LimitError(
                f"too many attributes on {where}: {count} > max_attributes_per_span "
                f"({self.max_attributes})",
                limit="max_attributes_per_span",
                value=self.max_attributes,
            )

    def depth(self, where: str) -> LimitError:
        """The error for a value nested too deeply."""
        return LimitError(
            f"attribute value nested too deeply on {where}: deeper than max_attribute_depth "
            f"({self.max_depth})",
            limit="max_attribute_depth",
            value=self.max_depth,
        )


# ----------------------------------------------------------------------------- decoding


def decode_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse an ``ExportTraceServiceRequest`` from protobuf bytes.

    Raises:
        PayloadError: The bytes are not one.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise PayloadError(f"malformed protobuf ExportTraceServiceRequest: {exc}") from None
    return request


def decode_json(body: bytes) -> ExportTraceServiceRequest:
    """Parse an ``ExportTraceServiceRequest`` from its OTLP JSON form.

    Raises:
        PayloadError: The body is not JSON, or not a request (the message says where).
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("an OTLP JSON request must be an object with 'resourceSpans'")
    try:
        _hex_ids_to_base64(data)
        request = ExportTraceServiceRequest()
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise PayloadError(f"not an OTLP JSON ExportTraceServiceRequest: {exc}") from None
    return request


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    """OTLP JSON writes ids in hex; the protobuf JSON mapping expects base64: convert in place."""
    for resource_spans in _list(data, "resourceSpans", "resource_spans"):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            for span in _list(scope_spans, "spans"):
                if not isinstance(span, dict):
                    continue
                _fix_ids(span)
                for link in _list(span, "links"):
                    if isinstance(link, dict):
                        _fix_ids(link)


def _list(data: Any, *names: str) -> list[Any]:
    if not isinstance(data, dict):
        return []
    for name in names:
        value = data.get(name)
        if isinstance(value, list):
            return value
    return []


def _fix_ids(item: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        value = item.get(name)
        if not isinstance(value, str) or value == "":
            continue
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise PayloadError(f"{name} {value[:40]!r} is not hex") from None
        item[name] = base64.b64encode(raw).decode("ascii")


def records_from_request(request: ExportTraceServiceRequest, limits: Limits) -> list[SpanRecord]:
    """The span records of a decoded request, checked against ``limits``.

    Raises:
        LimitError: The request is over a limit.
        PayloadError: An id has the wrong length.
    """
    limits.spans(
        sum(
            len(scope_spans.spans)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
        )
    )
    records: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        resource_attrs = resource_spans.resource.attributes
        limits.attributes(len(resource_attrs), "a resource")
        resource = _attributes(resource_attrs, limits, "a resource")
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name or None
            for span in scope_spans.spans:
                records.append(_record(span, resource, scope, limits))
    return records


def _record(span: Any, resource: dict[str, Any], scope: str | None, limits: Limits) -> SpanRecord:
    where = f"span {span.name[:80]!r}"
    trace_id = _hex(span.trace_id, 16, "trace_id", where)
    span_id = _hex(span.span_id, 8, "span_id", where)
    parent = _hex(span.parent_span_id, 8, "parent_span_id", where) if span.parent_span_id else None
    limits.attributes(len(span.attributes), where)
    start = span.start_time_unix_nano
    events = []
    for event in span.events:
        limits.attributes(len(event.attributes), f"an event of {where}")
        events.append(
            SpanEvent(
                name=event.name,
                ts_ns=event.time_unix_nano or start,
                attributes=_attributes(event.attributes, limits, where),
            )
        )
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=span.name,
        kind=SPAN_KINDS.get(span.kind, "INTERNAL"),
        start_ns=start,
        end_ns=span.end_time_unix_nano or start,
        status_code=_STATUS.get(span.status.code, "unset"),
        status_message=span.status.message or None,
        attributes=_attributes(span.attributes, limits, where),
        events=tuple(events),
        resource=resource,
        scope=scope,
    )


def _hex(raw: bytes, size: int, name: str, where: str) -> str:
    if len(raw) != size:
        raise PayloadError(f"{where}: {name} must be {size} bytes, got {len(raw)}")
    return binascii.hexlify(raw).decode("ascii")


def _attributes(items: Iterable[KeyValue], limits: Limits, where: str) -> dict[str, Any]:
    return {item.key: _value(item.value, limits, where, 1) for item in items}


def _value(value: AnyValue, limits: Limits, where: str, depth: int) -> Any:
    kind = value.WhichOneof("value")
    if kind is None or kind == "string_value_strindex":
        return None
    if kind in ("array_value", "kvlist_value"):
        if depth >= limits.max_depth:
            raise limits.depth(where)
        if kind == "array_value":
            items = value.array_value.values
            return tuple(_value(item, limits, where, depth + 1) for item in items)
        pairs = value.kvlist_value.values
        limits.attributes(len(pairs), where)
        return {pair.key: _value(pair.value, limits, where, depth + 1) for pair in pairs}
    return getattr(value, kind)


# ----------------------------------------------------------------------------- records


def check_records(records: Sequence[SpanRecord], limits: Limits) -> None:
    """Check records that did not come through OTLP (the batch format) against ``limits``.

    Raises:
        LimitError: The batch is over a limit.
    """
    limits.spans(len(records))
    for record in records:
        where = f"span {record.name[:80]!r}"
        limits.attributes(len(record.attributes), where)
        limits.attributes(len(record.resource), f"the resource of {where}")
        _check_depth(record.attributes, limits, where)
        _check_depth(record.resource, limits, where)
        for event in record.events:
            limits.attributes(len(event.attributes), f"an event of {where}")
            _check_depth(event.attributes, limits, where)


def _check_depth(values: Mapping[str, Any], limits: Limits, where: str) -> None:
    # Iterative: a hostile value must not exhaust the stack.
    stack: list[tuple[Any, int]] = [(value, 1) for value in values.values()]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        if depth >= limits.max_depth:
            raise limits.depth(where)
        stack.extend((child, depth + 1) for child in children)


# ----------------------------------------------------------------------------- responses


def encode_response(rejected: int, message: str, *, as_json: bool) -> tuple[bytes, str]:
    """An ``ExportTraceServiceResponse`` (with ``partial_success`` when spans were refused).

    Returns:
        The body and its content type, in the request's encoding.
    """
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    if as_json:
        return json_format.MessageToJson(response, indent=None).encode(), "application/json"
    return response.SerializeToString(), "application/x-protobuf"
