"""The SDK-free form of a span that the ingest mapper reads.

Every path that stores spans builds :class:`SpanRecord` values: the in-process exporter from the
SDK's ``ReadableSpan``, the server from OTLP protobuf or JSON. Nothing here refers to SDK classes
at run time, so the server can build records without the OpenTelemetry SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

STATUS_CODES = ("unset", "ok", "error")
"""The values of :attr:`SpanRecord.status_code`."""


@dataclass(frozen=True)
class SpanEvent:
    """A timestamped event of a span (a thought, an answer, an exception, ...)."""

    name: str
    ts_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanRecord:
    """One finished OpenTelemetry span, in plain Python values.

    Attributes:
        trace_id: 32 lowercase hex digits.
        span_id: 16 lowercase hex digits.
        parent_span_id: the parent's span id, or ``None`` for a root span.
        name: the span name.
        kind: the OpenTelemetry span kind name (``INTERNAL``, ``CLIENT``, ...).
        start_ns: start time, Unix nanoseconds.
        end_ns: end time, Unix nanoseconds.
        status_code: ``"unset"``, ``"ok"`` or ``"error"``.
        status_message: the status description, if any.
        attributes: span attributes (values as the source sent them).
        events: span events, in the order recorded.
        resource: attributes of the resource that produced the span.
        scope: name of the instrumentation scope.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status_code: str
    status_message: str | None
    attributes: Mapping[str, Any]
    events: Sequence[SpanEvent] = ()
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope: str | None = None


def record_from_readable_span(span: ReadableSpan) -> SpanRecord:
    """Build a :class:`SpanRecord` from a finished SDK span."""
    context = span.get_span_context()
    if context is None:
        raise ValueError("span has no span context")
    parent = span.parent
    start = span.start_time or 0
    end = span.end_time if span.end_time is not None else start
    status = span.status
    scope = span.instrumentation_scope
    return SpanRecord(
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
        name=span.name,
        kind=span.kind.name,
        start_ns=start,
        end_ns=end,
        status_code=status.status_code.name.lower(),
        status_message=status.description or None,
        attributes=_as_dict(span.attributes),
        events=tuple(
            SpanEvent(event.name, event.timestamp or start, _as_dict(event.attributes))
            for event in span.events
        ),
        resource=_as_dict(span.resource.attributes) if span.resource is not None else {},
        scope=scope.name if scope is not None else None,
    )


def _as_dict(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    # The SDK's BoundedAttributes copies its dict in one call; generic mappings go key by key.
    copy = getattr(attributes, "copy", None)
    result = copy() if callable(copy) else None
    return result if type(result) is dict else dict(attributes)
