"""The LLM span of one OpenAI call, and the stream proxies that reassemble streamed output.

A streamed call returns the SDK's ``Stream`` / ``AsyncStream`` wrapped in a transparent proxy
(``isinstance`` still holds; chunks are the SDK's own objects, passed on unchanged). The proxy
feeds each chunk to an accumulator and ends the span when the stream is exhausted, fails, is
closed (also by leaving a ``with`` block) or is garbage collected: whatever arrived until then is
recorded. Nothing here lets a recording failure reach the caller.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind

from lucidtrace.tracer import semconv
from lucidtrace.tracer._log import log_once
from lucidtrace.tracer._spans import record_error, span_attributes
from lucidtrace.tracer.integrations._openai_messages import (
    chat_response_attributes,
    plain,
    request_attributes,
    responses_response_attributes,
)

__all__ = [
    "ChatAccumulator",
    "LLMCall",
    "ResponsesAccumulator",
    "TracedAsyncRawResponse",
    "TracedAsyncStream",
    "TracedRawResponse",
    "TracedStream",
]


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


class ChatAccumulator:
    """Rebuilds a chat completion (as a plain dict) from ``chat.completion.chunk`` objects."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: Any = None

    def add(self, chunk: Any) -> None:
        """Fold one chunk in."""
        for key in ("id", "model"):
            value = _get(chunk, key)
            if isinstance(value, str) and key not in self.head:
                self.head[key] = value
        usage = _get(chunk, "usage")
        if usage is not None:
            self.usage = plain(usage)
        for choice in _get(chunk, "choices") or []:
            index = _get(choice, "index") or 0
            state = self.choices.setdefault(
                index, {"index": index, "message": {"role": "assistant"}, "calls": {}}
            )
            if _get(choice, "finish_reason") is not None:
                state["finish_reason"] = _get(choice, "finish_reason")
            delta = _get(choice, "delta")
            if delta is not None:
                self._add_delta(state, delta)

    @staticmethod
    def _add_delta(state: dict[str, Any], delta: Any) -> None:
        message = state["message"]
        for key in ("content", "reasoning_content", "reasoning", "refusal"):
            piece = _get(delta, key)
            if isinstance(piece, str):
                message[key] = message.get(key, "") + piece
        for call in _get(delta, "tool_calls") or []:
            index = _get(call, "index") or 0
            slot = state["calls"].setdefault(index, {"id": None, "name": "", "arguments": ""})
            if _get(call, "id"):
                slot["id"] = _get(call, "id")
            function = _get(call, "function")
            if function is not None:
                slot["name"] += _get(function, "name") or ""
                slot["arguments"] += _get(function, "arguments") or ""

    def result(self) -> dict[str, Any]:
        """The completion so far, shaped like a non-streamed one."""
        choices = []
        for index in sorted(self.choices):
            state = self.choices[index]
            message = dict(state["message"])
            if state["calls"]:
                message["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for _, c in sorted(state["calls"].items())
                ]
            choice = {"index": index, "message": message}
            if "finish_reason" in state:
                choice["finish_reason"] = state["finish_reason"]
            choices.append(choice)
        return {**self.head, "choices": choices, "usage": self.usage}

    def attributes(self) -> dict[str, Any]:
        """The span attributes of what arrived."""
        return chat_response_attributes(self.result())


class ResponsesAccumulator:
    """Rebuilds a Responses API response (as a plain dict) from its stream events."""

    _FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def __init__(self) -> None:
        self.response: dict[str, Any] = {}
        self.items: dict[int, dict[str, Any]] = {}
        self.final: dict[str, Any] | None = None

    def add(self, event: Any) -> None:
        """Fold one event in."""
        kind = _get(event, "type")
        if kind in self._FINAL or kind in ("response.created", "response.in_progress"):
            response = plain(_get(event, "response"))
            if isinstance(response, dict):
                self.response = response
                if kind in self._FINAL:
                    self.final = response
            return
        index = _get(event, "output_index")
        if not isinstance(index, int):
            return
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = plain(_get(event, "item"))
            if isinstance(item, dict):
                self.items[index] = item
        elif kind == "response.output_text.delta":
            item = self.items.setdefault(index, {"type": "message", "role": "assistant"})
            self._append(item, "content", _get(event, "content_index"), "output_text", event)
        elif kind == "response.reasoning_summary_text.delta":
            item = self.items.setdefault(index, {"type": "reasoning"})
            self._append(item, "summary", _get(event, "summary_index"), "summary_text", event)
        elif kind == "response.reasoning_text.delta":
            item = self.items.setdefault(index, {"type": "reasoning"})
            self._append(item, "content", _get(event, "content_index"), "reasoning_text", event)
        elif kind == "response.function_call_arguments.delta":
            item = self.items.setdefault(index, {"type": "function_call"})
            item["arguments"] = (item.get("arguments") or "") + (_get(event, "delta") or "")

    @staticmethod
    def _append(item: dict[str, Any], key: str, index: Any, kind: str, event: Any) -> None:
        parts = item.get(key)
        if not isinstance(parts, list):
            parts = item[key] = []
        position = index if isinstance(index, int) and index >= 0 else 0
        while len(parts) <= position:
            parts.append({"type": kind, "text": ""})
        part = parts[position]
        part["text"] = (part.get("text") or "") + (_get(event, "delta") or "")

    def result(self) -> dict[str, Any]:
        """The response so far (the final one when the stream completed)."""
        if self.final is not None:
            return self.final
        return {**self.response, "output": [self.items[i] for i in sorted(self.items)]}

    def attributes(self) -> dict[str, Any]:
        """The span attributes of what arrived."""
        return responses_response_attributes(self.result())


class LLMCall:
    """The ``chat {model}`` LLM span of one ``create`` call."""

    def __init__(self, span: trace_api.Span, api: str) -> None:
        self.span = span
        self.api = api
        self._ended = False
        self._lock = threading.Lock()

    @classmethod
    def start(cls, tracer: trace_api.Tracer, api: str, kwargs: Mapping[str, Any]) -> LLMCall | None:
        """Start the span of a call (None, logged, if even that fails)."""
        try:
            attributes = dict(span_attributes("LLM", "chat"))
            attributes[semconv.PROVIDER_NAME] = "openai"
            try:
                attributes.update(request_attributes(api, kwargs))
            except Exception:
                log_once("openai-request", "lucidtrace: could not record an OpenAI request")
            model = attributes.get(semconv.REQUEST_MODEL)
            name = f"chat {model}" if model else "chat"
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        except Exception:
            log_once("openai-start", "lucidtrace: could not start an OpenAI span", exc_info=True)
            return None
        return cls(span, api)

    def attach(self) -> object:
        """Make the span current (for the HTTP request); returns the token for :meth:`detach`."""
        return context_api.attach(trace_api.set_span_in_context(self.span))

    @staticmethod
    def detach(token: object) -> None:
        """Restore the context :meth:`attach` replaced."""
        try:
            context_api.detach(token)  # type: ignore[arg-type]
        except Exception:
            log_once("openai-detach", "lucidtrace: could not restore the context", exc_info=True)

    def finish(self, response: Any = None, accumulator: Any = None) -> None:
        """Record the response (an SDK object, or an accumulator's state) and end the span."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            if accumulator is not None:
                attributes = accumulator.attributes()
            elif response is not None:
                data = plain(response)
                if isinstance(data, dict):
                    reader = (
                        chat_response_attributes
                        if self.api == "chat"
                        else responses_response_attributes
                    )
                    attributes = reader(data)
                else:
                    attributes = {}
            else:
                attributes = {}
            self.span.set_attributes(attributes)
        except Exception:
            log_once("openai-response", "lucidtrace: could not record an OpenAI response")
        self._end()

    def fail(self, exc: BaseException, accumulator: Any = None) -> None:
        """Record ``exc`` (and anything streamed before it) and end the span."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            if accumulator is not None:
                self.span.set_attributes(accumulator.attributes())
            record_error(self.span, exc)
        except Exception:
            log_once("openai-error", "lucidtrace: could not record an OpenAI error")
        self._end()

    def _end(self) -> None:
        try:
            self.span.end()
        except Exception:
            log_once("openai-end", "lucidtrace: could not end an OpenAI span", exc_info=True)


if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]  # generic only in wrapt's type stubs
else:
    _Proxy = wrapt.ObjectProxy


class _StreamBase(_Proxy):
    def __init__(self, stream: Any, call: LLMCall, accumulator: Any) -> None:
        super().__init__(stream)
        self._self_call = call
        self._self_accumulator = accumulator

    def _self_add(self, item: Any) -> None:
        try:
            self._self_accumulator.add(item)
        except Exception:
            log_once("openai-chunk", "lucidtrace: could not record a streamed chunk", exc_info=True)

    def _self_finish(self) -> None:
        self._self_call.finish(accumulator=self._self_accumulator)

    def _self_fail(self, exc: BaseException) -> None:
        self._self_call.fail(exc, accumulator=self._self_accumulator)

    def __del__(self) -> None:
        # A stream dropped before its end: record what arrived.
        with contextlib.suppress(Exception):  # nothing may escape a finalizer
            self._self_finish()


class TracedStream(_StreamBase):
    """A transparent proxy of the SDK's ``Stream`` that records what flows through it."""

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            self._self_finish()
            raise
        except BaseException as exc:
            self._self_fail(exc)
            raise
        self._self_add(item)
        return item

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finish()

    def close(self) -> None:
        """Close the stream (the span records what arrived so far)."""
        try:
            self.__wrapped__.close()
        finally:
            self._self_finish()


class TracedAsyncStream(_StreamBase):
    """A transparent proxy of the SDK's ``AsyncStream`` that records what flows through it."""

    def __aiter__(self) -> TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_finish()
            raise
        except BaseException as exc:
            self._self_fail(exc)
            raise
        self._self_add(item)
        return item

    async def __aenter__(self) -> TracedAsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_finish()

    async def close(self) -> None:
        """Close the stream (the span records what arrived so far)."""
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finish()


def _read_body(response: Any) -> Any:
    """The JSON body of a raw response the caller has read already (None when it has not)."""
    try:
        content = response.http_response.content  # httpx raises when the body was not read
        return json.loads(content)
    except Exception:
        return None


class _RawResponseBase(_Proxy):
    """A raw response (``with_raw_response`` / ``with_streaming_response``), recorded when parsed.

    The caller decides how the body is read: the span records what ``parse()`` returns (a
    stream comes back traced), or the body the caller read otherwise, when the response is
    closed, or dropped.
    """

    def __init__(self, response: Any, call: LLMCall, accumulator: Any) -> None:
        super().__init__(response)
        self._self_call = call
        self._self_accumulator = accumulator
        self._self_stream: Any = None

    def _self_parsed(self, parsed: Any, *, is_async: bool) -> Any:
        try:
            from openai import AsyncStream, Stream

            if isinstance(parsed, Stream | AsyncStream):
                if self._self_stream is None:
                    cls = TracedAsyncStream if is_async else TracedStream
                    self._self_stream = cls(parsed, self._self_call, self._self_accumulator)
                return self._self_stream
            self._self_call.finish(parsed)
        except Exception:
            log_once("openai-raw", "lucidtrace: could not record a raw response", exc_info=True)
        return parsed

    def _self_finish(self) -> None:
        stream = self._self_stream
        if stream is not None:
            stream._self_finish()
            return
        self._self_call.finish(_read_body(self.__wrapped__))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # nothing may escape a finalizer
            self._self_finish()


class TracedRawResponse(_RawResponseBase):
    """A transparent proxy of the SDK's ``APIResponse`` / ``LegacyAPIResponse``."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's parsed response (recorded; a stream comes back traced)."""
        try:
            parsed = self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            self._self_call.fail(exc)
            raise
        if args or kwargs.get("to") is not None:
            return parsed  # another type than the API's: recorded from the body on close
        return self._self_parsed(parsed, is_async=False)

    def close(self) -> None:
        """Close the response (the span records what was read)."""
        try:
            self.__wrapped__.close()
        finally:
            self._self_finish()


class TracedAsyncRawResponse(_RawResponseBase):
    """A transparent proxy of the SDK's ``AsyncAPIResponse``."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's parsed response (recorded; a stream comes back traced)."""
        try:
            parsed = await self.__wrapped__.parse(*args, **kwargs)
        except BaseException as exc:
            self._self_call.fail(exc)
            raise
        if args or kwargs.get("to") is not None:
            return parsed
        return self._self_parsed(parsed, is_async=True)

    async def close(self) -> None:
        """Close the response (the span records what was read)."""
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finish()
