"""What users write in their agent code: ``traced``, ``span``, ``thought``, ``tool_call``, ...

Every function here is a cheap no-op while nothing is configured, and none of them lets a
tracing failure reach the caller: such failures are logged once per kind.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar, cast, overload

from opentelemetry import trace as trace_api
from opentelemetry.util.types import AttributeValue

from lucidtrace.tracer import semconv
from lucidtrace.tracer._config import STATE
from lucidtrace.tracer._log import log_once
from lucidtrace.tracer._serialize import to_json
from lucidtrace.tracer._spans import (
    NOOP_SPAN,
    NOOP_TOOL,
    UNSET,
    Run,
    SpanHandle,
    SpanScope,
    ToolCall,
    arguments_json,
    normalize_kind,
    span_attributes,
    to_attribute,
)

P = ParamSpec("P")
R = TypeVar("R")


def _text(value: object) -> str:
    """``str(value)``, never raising: a broken ``__str__`` gives the repr, then a placeholder.

    A value that cannot be shown must not cost the rest of the record (the documents of a
    retrieval, the citations of an answer).
    """
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        log_once(
            "str", "lucidtrace: str() of a %s raised; its repr is stored", type(value).__name__
        )
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__qualname__}>"


# ----------------------------------------------------------------------------- spans


def span(
    name: str,
    kind: str = "chain",
    *,
    input: object = UNSET,
    attributes: Mapping[str, object] | None = None,
) -> AbstractContextManager[SpanHandle]:
    """A span around a block: ``with lt.span("plan", kind="chain") as s: s.set_output(...)``.

    Args:
        name: The span's name.
        kind: One of :data:`semconv.SPAN_KINDS`, any case (``"agent"``, ``"tool"``, ...).
        input: What the block works on (stored as JSON).
        attributes: More attributes (non-scalars stored as JSON).

    Returns:
        A context manager yielding a :class:`SpanHandle`.

    Raises:
        ValueError: ``kind`` is not a span kind.
    """
    kind = normalize_kind(kind)
    tracer = STATE.tracer
    if tracer is None:
        return NOOP_SPAN
    start = span_attributes(kind, name)
    if input is not UNSET or attributes:
        start = dict(start)
        if input is not UNSET:
            start[semconv.INPUT] = to_json(input)
        if attributes:
            start.update({k: to_attribute(v) for k, v in attributes.items()})
    return SpanScope(tracer, name, start)


def tool_call(
    name: str,
    arguments: object = None,
    *,
    call_id: str | None = None,
    description: str | None = None,
) -> AbstractContextManager[ToolCall]:
    """A tool call: ``with lt.tool_call("search", {"q": ...}) as call: call.set_result(...)``.

    The action (tool name and arguments) is recorded when the block starts, the observation
    (``call.set_result(value)``) when it ends. An exception inside the block is recorded as the
    tool's error and propagates unchanged.

    Args:
        name: The tool's name.
        arguments: The tool's arguments (a dict, or a JSON string as models emit them).
        call_id: The id the model gave the call, when it gave one.
        description: What the tool does.

    Returns:
        A context manager yielding a :class:`ToolCall`.
    """
    tracer = STATE.tracer
    if tracer is None:
        return NOOP_TOOL
    attributes: dict[str, AttributeValue] = {
        **span_attributes("TOOL", name),
        semconv.TOOL_NAME: str(name),
    }
    try:
        if arguments is not None:
            attributes[semconv.TOOL_CALL_ARGUMENTS] = arguments_json(arguments)
        if call_id is not None:
            attributes[semconv.TOOL_CALL_ID] = str(call_id)
        if description is not None:
            attributes[semconv.TOOL_DESCRIPTION] = str(description)
    except Exception:
        log_once("tool-call", "lucidtrace: could not record tool arguments", exc_info=True)
    return SpanScope(tracer, f"execute_tool {name}", attributes, ToolCall)


def _instant_span(name: str, kind: str, attributes: dict[str, AttributeValue]) -> Any:
    """Start a span for a step with no duration of its own; the caller ends it at once."""
    tracer = STATE.tracer
    if tracer is None:
        return None
    return tracer.start_span(name, attributes={**span_attributes(kind, name), **attributes})


def _current_recording_span() -> trace_api.Span | None:
    current = trace_api.get_current_span()
    return current if current.is_recording() else None


def thought(text: str) -> None:
    """Record a piece of the agent's stated reasoning on the current span.

    With no current span, a zero-length ``REASONING`` span carries it.
    """
    if STATE.tracer is None:
        return
    try:
        attributes: dict[str, AttributeValue] = {semconv.THOUGHT_TEXT: _text(text)}
        current = _current_recording_span()
        if current is not None:
            current.add_event(semconv.EVENT_THOUGHT, attributes)
            return
        holder = _instant_span("reasoning", "REASONING", {})
        if holder is not None:
            holder.add_event(semconv.EVENT_THOUGHT, attributes)
            holder.end()
    except Exception:
        log_once("thought", "lucidtrace: could not record a thought", exc_info=True)


def answer(text: str, *, cites: Iterable[object] | None = None) -> str:
    """Record the agent's answer (and the ids of the documents it cites); returns ``text``.

    With no current span, a zero-length span named ``answer`` carries it.
    """
    if STATE.tracer is None:
        return text
    try:
        attributes: dict[str, AttributeValue] = {
            semconv.ANSWER_TEXT: _text(text),
            semconv.ANSWER_CITATIONS: tuple(_text(c) for c in cites or ()),
        }
        current = _current_recording_span()
        if current is not None:
            current.add_event(semconv.EVENT_ANSWER, attributes)
        else:
            holder = _instant_span("answer", "CHAIN", {})
            if holder is not None:
                holder.add_event(semconv.EVENT_ANSWER, attributes)
                holder.end()
    except Exception:
        log_once("answer", "lucidtrace: could not record an answer", exc_info=True)
    return text


def _document(doc: object, rank: int) -> dict[str, Any]:
    """One retrieved document as ``{id, content, score, source, metadata}``."""
    if isinstance(doc, str):
        return {"id": str(rank), "content": doc}
    if isinstance(doc, Mapping):
        fields = dict(doc)
    else:  # objects such as LangChain's Document: page_content, metadata, id
        fields = {"content": getattr(doc, "page_content", None) or getattr(doc, "content", None)}
        for attr in ("id", "score", "source", "metadata"):
            if getattr(doc, attr, None) is not None:
                fields[attr] = getattr(doc, attr)
        if fields["content"] is None:
            fields["content"] = repr(doc)
    out: dict[str, Any] = {}
    metadata = dict(fields.pop("metadata", None) or {})
    doc_id = fields.pop("id", None)
    if doc_id is None:
        doc_id = metadata.get("id", rank)
    out["id"] = _text(doc_id)
    for key in ("content", "score", "source"):
        if key in fields:
            out[key] = fields.pop(key)
    metadata.update(fields)  # keys outside the contract are kept, under metadata
    if metadata:
        out["metadata"] = metadata
    return out


def retrieval(
    query: str,
    documents: Sequence[object] = (),
    *,
    data_source: str | None = None,
    name: str = "retrieval",
) -> None:
    """Record a retrieval: the query and the documents it returned, best first.

    Args:
        query: The query text.
        documents: Dicts with ``id``, ``content``, ``score``, ``source``, ``metadata`` (other
            keys go under ``metadata``), plain strings, or objects with ``page_content``.
        data_source: The index or collection searched.
        name: The span's name.
    """
    if STATE.tracer is None:
        return
    try:
        attributes: dict[str, AttributeValue] = {
            semconv.RETRIEVAL_QUERY: _text(query),
            semconv.RETRIEVAL_DOCUMENTS: to_json(
                [_document(doc, rank) for rank, doc in enumerate(documents)]
            ),
        }
        if data_source is not None:
            attributes[semconv.DATA_SOURCE_ID] = _text(data_source)
        holder = _instant_span(name, "RETRIEVER", attributes)
        if holder is not None:
            holder.end()
    except Exception:
        log_once("retrieval", "lucidtrace: could not record a retrieval", exc_info=True)


# ----------------------------------------------------------------------------- @traced


def _input_capturer(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], str]:
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    params = list(signature.parameters) if signature is not None else []
    skip = params[0] if params and params[0] in ("self", "cls") else None

    def capture(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if signature is None:
            return to_json({"args": args, "kwargs": kwargs})
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError:  # the call itself is wrong; the function will say so
            return to_json({"args": args, "kwargs": kwargs})
        arguments = bound.arguments
        if skip is not None:
            arguments = {k: v for k, v in arguments.items() if k != skip}
        return to_json(arguments)

    return capture


class _Traced:
    """What ``@traced`` knows about a function once decorated."""

    __slots__ = ("attributes", "capture_input", "capture_output", "name", "trace_args")

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        kind: str,
        capture_input: bool,
        capture_output: bool,
        trace_args: dict[str, Any] | None,
    ) -> None:
        self.name = name
        self.attributes = span_attributes(kind, name)
        self.capture_input = _input_capturer(fn) if capture_input else None
        self.capture_output = capture_output
        self.trace_args = trace_args

    def start(self, tracer: trace_api.Tracer, args: Any, kwargs: Any) -> Run | None:
        call_input = None
        if self.capture_input is not None:
            try:
                call_input = self.capture_input(args, kwargs)
            except Exception:
                log_once("capture-input", "lucidtrace: could not capture inputs", exc_info=True)
        return Run.start(tracer, self.name, self.attributes, self.trace_args, call_input)


def _wrap_function(fn: Callable[P, R], spec: _Traced) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        tracer = STATE.tracer
        if tracer is None:
            return fn(*args, **kwargs)
        run = spec.start(tracer, args, kwargs)
        if run is None:
            return fn(*args, **kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            run.suspend()
            run.finish(error=exc)
            raise
        run.suspend()
        run.finish(output=result if spec.capture_output else UNSET)
        return result

    return wrapper


def _wrap_coroutine(fn: Callable[P, Awaitable[R]], spec: _Traced) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        tracer = STATE.tracer
        if tracer is None:
            return await fn(*args, **kwargs)
        run = spec.start(tracer, args, kwargs)
        if run is None:
            return await fn(*args, **kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            run.suspend()
            run.finish(error=exc)
            raise
        run.suspend()
        run.finish(output=result if spec.capture_output else UNSET)
        return result

    return wrapper


MAX_YIELDED_ITEMS = 1_000
"""How many yielded items a generator's span keeps as its output (the rest are counted)."""


class _Items:
    """The yielded items kept as a generator's output (the first :data:`MAX_YIELDED_ITEMS`)."""

    __slots__ = ("extra", "items")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.extra = 0

    def add(self, item: object) -> None:
        if len(self.items) < MAX_YIELDED_ITEMS:
            self.items.append(item)
        else:
            self.extra += 1

    def output(self) -> list[Any]:
        return [*self.items, f"[{self.extra} more items]"] if self.extra else self.items


def _wrap_generator(
    fn: Callable[P, Generator[Any, Any, Any]], spec: _Traced
) -> Callable[P, Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
        tracer = STATE.tracer
        run = None if tracer is None else spec.start(tracer, args, kwargs)
        if run is None:
            return (yield from fn(*args, **kwargs))
        items = _Items()
        try:
            gen = fn(*args, **kwargs)
        except BaseException as exc:
            run.suspend()
            run.finish(error=exc)
            raise
        run.suspend()
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            run.resume()
            try:
                if to_throw is not None:
                    pending, to_throw = to_throw, None
                    item = gen.throw(pending)
                else:
                    item = gen.send(to_send)
            except StopIteration as stop:
                run.suspend()
                run.finish(output=items.output() if spec.capture_output else UNSET)
                return stop.value
            except BaseException as exc:
                run.suspend()
                run.finish(error=exc)
                raise
            run.suspend()
            if spec.capture_output:
                items.add(item)
            try:
                to_send = yield item
            except GeneratorExit:
                # The consumer stopped early: close the inner generator inside its span.
                run.resume()
                try:
                    gen.close()
                finally:
                    run.suspend()
                    run.finish(output=items.output() if spec.capture_output else UNSET)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


class _NoRun:
    """Stands in for :class:`Run` when tracing is off, so generator wrappers have one path."""

    __slots__ = ()

    def resume(self) -> None:
        """Nothing to re-enter."""

    def suspend(self) -> None:
        """Nothing to leave."""

    def finish(self, *, output: object = UNSET, error: BaseException | None = None) -> None:
        """Nothing to end."""


_NO_RUN = _NoRun()


def _wrap_async_generator(
    fn: Callable[P, AsyncGenerator[Any, Any]], spec: _Traced
) -> Callable[P, AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
        tracer = STATE.tracer
        run: Run | _NoRun = _NO_RUN
        if tracer is not None:
            run = spec.start(tracer, args, kwargs) or _NO_RUN
        keep = spec.capture_output and run is not _NO_RUN
        items = _Items()
        try:
            agen = fn(*args, **kwargs)
        except BaseException as exc:
            run.suspend()
            run.finish(error=exc)
            raise
        run.suspend()
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            run.resume()
            try:
                if to_throw is not None:
                    pending, to_throw = to_throw, None
                    item = await agen.athrow(pending)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                run.suspend()
                run.finish(output=items.output() if keep else UNSET)
                return
            except BaseException as exc:
                run.suspend()
                run.finish(error=exc)
                raise
            run.suspend()
            if keep:
                items.add(item)
            try:
                to_send = yield item
            except GeneratorExit:
                run.resume()
                try:
                    await agen.aclose()
                finally:
                    run.suspend()
                    run.finish(output=items.output() if keep else UNSET)
                raise
            except BaseException as exc:
                to_throw = exc

    return wrapper


@overload
def traced(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    *,
    name: str | None = None,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    session_id: str | None = None,
    user_id: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    kind: str = "chain",
    capture_input: bool = True,
    capture_output: bool = True,
    session_id: str | None = None,
    user_id: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Record every call of a function as a span: ``@lt.traced`` or ``@lt.traced(kind="agent")``.

    Works on plain, async, generator and async-generator functions. The span's input is the
    bound arguments (``self``/``cls`` left out), its output the return value (for generators,
    the list of yielded items); both are stored as JSON, whatever their type. An exception is
    recorded (status ERROR, ``error.type``, an ``exception`` event) and re-raised unchanged.

    Args:
        func: The function, when used as ``@traced`` without parentheses.
        name: The span's name (default: the function's name).
        kind: One of :data:`semconv.SPAN_KINDS`, any case.
        capture_input: Record the arguments.
        capture_output: Record the return value or the yielded items.
        session_id: Session of the trace (stamped on this span and everything inside).
        user_id: End user of the trace.
        tags: Tags of the trace.
        metadata: Metadata of the trace (a JSON-serialisable mapping).

    Raises:
        ValueError: ``kind`` is not a span kind (raised when decorating).
    """
    normalized = normalize_kind(kind)
    trace_args = {
        key: value
        for key, value in (
            ("session_id", session_id),
            ("user_id", user_id),
            ("tags", tags),
            ("metadata", metadata),
        )
        if value is not None
    }
    if isinstance(tags, str):
        msg = "tags must be a list of strings, not one string: use tags=[...]"
        raise TypeError(msg)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        spec = _Traced(
            fn,
            name=str(name or getattr(fn, "__name__", "function")),
            kind=normalized,
            capture_input=capture_input,
            capture_output=capture_output,
            trace_args=trace_args or None,
        )
        wrapped: Any
        if inspect.isasyncgenfunction(fn):
            wrapped = _wrap_async_generator(cast(Any, fn), spec)
        elif inspect.isgeneratorfunction(fn):
            wrapped = _wrap_generator(cast(Any, fn), spec)
        elif inspect.iscoroutinefunction(fn):
            wrapped = _wrap_coroutine(cast(Any, fn), spec)
        else:
            wrapped = _wrap_function(fn, spec)
        return cast(Callable[P, R], wrapped)

    if func is not None:
        return decorate(func)
    return decorate
