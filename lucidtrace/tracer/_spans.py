"""Span handles and the plumbing shared by ``span()``, ``tool_call()`` and ``@traced``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextvars import Token
from typing import Any, Final

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from lucidtrace.tracer import _attributes, semconv
from lucidtrace.tracer._log import log_once
from lucidtrace.tracer._serialize import to_json

UNSET: Final[Any] = object()
"""Marks an argument that was not given (None is a value worth recording)."""

_KIND_NAMES: dict[str, str] = {}
for _kind in semconv.SPAN_KINDS:
    for _spelling in (_kind, _kind.lower(), _kind.capitalize()):
        _KIND_NAMES[_spelling] = _kind

KIND_ATTRIBUTES: Final[dict[str, dict[str, AttributeValue]]] = {
    kind: (
        {semconv.SPAN_KIND: kind, semconv.OPERATION_NAME: semconv.KIND_TO_OPERATION[kind]}
        if kind in semconv.KIND_TO_OPERATION
        else {semconv.SPAN_KIND: kind}
    )
    for kind in semconv.SPAN_KINDS
}
"""The attributes every span of a kind starts with (shared; the SDK copies them)."""


def normalize_kind(kind: str) -> str:
    """``"agent"`` -> ``"AGENT"``; raises ValueError naming the valid kinds otherwise."""
    found = _KIND_NAMES.get(kind) if isinstance(kind, str) else None
    if found is None:
        found = kind.upper() if isinstance(kind, str) else None
        if found not in semconv.SPAN_KINDS:
            valid = ", ".join(k.lower() for k in semconv.SPAN_KINDS)
            msg = f"kind={kind!r} is not a lucidtrace span kind; use one of: {valid}"
            raise ValueError(msg)
    return found


def span_attributes(kind: str, name: str) -> dict[str, AttributeValue]:
    """The start attributes of a span of ``kind`` called ``name``."""
    attributes = KIND_ATTRIBUTES[kind]
    if kind == "AGENT":
        return {**attributes, semconv.AGENT_NAME: name}
    return attributes


def to_attribute(value: object) -> AttributeValue:
    """A span attribute value: scalars and lists of one scalar type as they are, else JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        first = type(value[0])
        if first in (str, bool, int, float) and all(type(v) is first for v in value):
            return tuple(value)
    return to_json(value)


def arguments_json(arguments: object) -> str:
    """Tool arguments as a JSON string; a string that already is a JSON document is kept."""
    if isinstance(arguments, str) and arguments.strip()[:1] in ("{", "["):
        try:
            json.loads(arguments)
        except ValueError:
            pass
        else:
            return arguments
    return to_json(arguments)


def error_type(exc: BaseException) -> str:
    """The ``error.type`` of an exception: its qualified class name (no module for builtins)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def record_error(span: trace_api.Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``: status ERROR, ``error.type``, an ``exception`` event."""
    try:
        message = str(exc)
    except Exception:  # an exception whose __str__ fails still has a type
        message = ""
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))
    span.set_attribute(semconv.ERROR_TYPE, error_type(exc))
    span.record_exception(exc, escaped=True)


class SpanHandle:
    """What ``with lt.span(...) as s`` gives you: set the span's input, output, attributes.

    When tracing is off every method does nothing, so code never needs to check.
    """

    __slots__ = ("_span",)

    def __init__(self, span: trace_api.Span | None) -> None:
        self._span = span

    @property
    def span(self) -> trace_api.Span:
        """The underlying OpenTelemetry span (an invalid, non-recording one when tracing is off)."""
        return self._span if self._span is not None else trace_api.INVALID_SPAN

    @property
    def is_recording(self) -> bool:
        """Whether anything set on this handle is recorded."""
        return self._span is not None and self._span.is_recording()

    def set_input(self, value: object) -> None:
        """Record what the span was called with (any value; stored as JSON)."""
        self._set(semconv.INPUT, value, as_json=True)

    def set_output(self, value: object) -> None:
        """Record what the span produced (any value; stored as JSON)."""
        self._set(semconv.OUTPUT, value, as_json=True)

    def set_attribute(self, key: str, value: object) -> None:
        """Set one attribute; values that are not scalars (or lists of them) are stored as JSON."""
        self._set(key, value, as_json=False)

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Set several attributes (see :meth:`set_attribute`)."""
        for key, value in attributes.items():
            self._set(key, value, as_json=False)

    def _set(self, key: str, value: object, *, as_json: bool) -> None:
        if self._span is None:
            return
        try:
            self._span.set_attribute(key, to_json(value) if as_json else to_attribute(value))
        except Exception:
            log_once("set-attribute", "lucidtrace: could not set attribute %r", key, exc_info=True)


class ToolCall(SpanHandle):
    """What ``with lt.tool_call(...) as call`` gives you: record the tool's result or error."""

    __slots__ = ()

    def set_result(self, result: object) -> Any:
        """Record the tool's result (stored as JSON) and return it unchanged."""
        self._set(semconv.TOOL_CALL_RESULT, result, as_json=True)
        return result

    def set_error(self, error: BaseException | str) -> None:
        """Record that the tool failed without raising (an exception or a message)."""
        if self._span is None:
            return
        try:
            if isinstance(error, BaseException):
                record_error(self._span, error)
            else:
                self._span.set_status(Status(StatusCode.ERROR, str(error)))
                self._span.set_attribute(semconv.ERROR_TYPE, "ToolError")
        except Exception:
            log_once("set-error", "lucidtrace: could not record a tool error", exc_info=True)


class SpanScope:
    """Context manager of a span: started and made current on enter, ended on exit.

    An exception leaving the block is recorded on the span and propagates unchanged.
    """

    __slots__ = ("_attributes", "_handle", "_handle_type", "_name", "_token", "_tracer")

    def __init__(
        self,
        tracer: trace_api.Tracer,
        name: str,
        attributes: dict[str, AttributeValue],
        handle_type: type[SpanHandle] = SpanHandle,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._handle_type = handle_type
        self._handle: SpanHandle | None = None
        self._token: Token[context_api.Context] | None = None

    def __enter__(self) -> Any:
        try:
            span = self._tracer.start_span(self._name, attributes=self._attributes)
            self._token = context_api.attach(trace_api.set_span_in_context(span))
        except Exception:
            log_once("start-span", "lucidtrace: could not start a span", exc_info=True)
            self._handle = self._handle_type(None)
            return self._handle
        self._handle = self._handle_type(span)
        return self._handle

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        handle = self._handle
        span = handle._span if handle is not None else None
        if span is None:
            return
        try:
            if exc is not None:
                record_error(span, exc)
            if self._token is not None:
                context_api.detach(self._token)
            span.end()
        except Exception:
            log_once("end-span", "lucidtrace: could not end a span", exc_info=True)


class NoopScope:
    """What ``span()``/``tool_call()`` return when tracing is off: enters to a no-op handle."""

    __slots__ = ("_handle",)

    def __init__(self, handle: SpanHandle) -> None:
        self._handle = handle

    def __enter__(self) -> Any:
        return self._handle

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        return None


NOOP_SPAN: Final = NoopScope(SpanHandle(None))
NOOP_TOOL: Final = NoopScope(ToolCall(None))


class Run:
    """A span being run by ``@traced``: started, suspended and resumed around each step.

    Generators leave and re-enter their span at every ``yield``; plain and async functions
    resume once and finish once.
    """

    __slots__ = ("attrs", "attrs_token", "context", "span", "token")

    def __init__(
        self,
        span: trace_api.Span,
        context: context_api.Context,
        attrs: _attributes._TraceAttributes | None,
    ) -> None:
        self.span = span
        self.context = context
        self.attrs = attrs
        self.token: Token[context_api.Context] | None = None
        self.attrs_token: Token[_attributes._TraceAttributes | None] | None = None

    @classmethod
    def start(
        cls,
        tracer: trace_api.Tracer,
        name: str,
        attributes: dict[str, AttributeValue],
        trace_args: dict[str, Any] | None,
        call_input: str | None,
    ) -> Run | None:
        """Start the span in the current context and enter it; None if tracing failed."""
        attrs_token = None
        try:
            attrs = _attributes.CURRENT.get()
            if trace_args:
                attrs = _attributes.merged(**trace_args)
                attrs_token = _attributes.CURRENT.set(attrs)
            if call_input is not None:
                attributes = {**attributes, semconv.INPUT: call_input}
            span = tracer.start_span(name, attributes=attributes)
            run = cls(span, trace_api.set_span_in_context(span), attrs)
            run.attrs_token = attrs_token
            run.token = context_api.attach(run.context)
        except Exception:
            if attrs_token is not None:
                _attributes.CURRENT.reset(attrs_token)
            log_once("start-run", "lucidtrace: could not start a span", exc_info=True)
            return None
        return run

    def resume(self) -> None:
        """Make the span current again (a generator is about to run a step)."""
        try:
            self.attrs_token = _attributes.CURRENT.set(self.attrs)
            self.token = context_api.attach(self.context)
        except Exception:
            log_once("resume", "lucidtrace: could not re-enter a span", exc_info=True)

    def suspend(self) -> None:
        """Leave the span (a step ended: the caller's context is restored)."""
        try:
            if self.token is not None:
                context_api.detach(self.token)
                self.token = None
        except Exception:
            log_once("suspend", "lucidtrace: could not leave a span", exc_info=True)
        try:
            if self.attrs_token is not None:
                _attributes.CURRENT.reset(self.attrs_token)
                self.attrs_token = None
        except Exception:
            log_once(
                "suspend-attrs", "lucidtrace: could not restore trace attributes", exc_info=True
            )

    def finish(self, *, output: object = UNSET, error: BaseException | None = None) -> None:
        """Record the output or the error, and end the span (the caller has suspended it)."""
        try:
            if error is not None:
                record_error(self.span, error)
            elif output is not UNSET:
                self.span.set_attribute(semconv.OUTPUT, to_json(output))
            self.span.end()
        except Exception:
            log_once("finish", "lucidtrace: could not end a span", exc_info=True)
