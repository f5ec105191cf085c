"""OpenAI SDK integration: an LLM span for every ``chat.completions.create`` / ``responses.create``.

Two ways in, same spans::

    import openai
    import lucidtrace as lt
    from lucidtrace.tracer.integrations.openai import wrap_openai

    client = wrap_openai(openai.OpenAI())  # this client only (OpenAI or AsyncOpenAI)
    lt.instrument("openai")  # or: every client of the process (OpenAIInstrumentor)

Each call becomes a ``chat {model}`` span (``lucidtrace.span.kind=LLM``,
``gen_ai.operation.name=chat``, ``gen_ai.provider.name=openai``) with the request parameters,
``gen_ai.input.messages`` / ``gen_ai.output.messages`` (text, reasoning, tool-call and tool-result
parts), the response model and id, finish reasons and ``gen_ai.usage.*`` (reasoning and cached
tokens included). The ingest mapper turns the reasoning parts into THOUGHT steps and proposed tool
calls into ACTION steps. Streams are handed back as transparent proxies of the SDK's streams and
recorded when they end, are closed, or are dropped. Errors mark the span failed and reach the
caller unchanged; a failure while recording never breaks the call.
"""

from __future__ import annotations

import contextvars
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import wrapt

from lucidtrace.tracer._config import STATE
from lucidtrace.tracer.integrations._base import (
    Instrumentor,
    inside_llm_run,
    register_instrumentor,
)
from lucidtrace.tracer.integrations._openai_streams import (
    ChatAccumulator,
    LLMCall,
    ResponsesAccumulator,
    TracedAsyncRawResponse,
    TracedAsyncStream,
    TracedRawResponse,
    TracedStream,
)

__all__ = ["OpenAIInstrumentor", "wrap_openai"]

ClientT = TypeVar("ClientT")

_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lucidtrace_openai_inside", default=False
)
"""Set while a traced call runs, so that a client both wrapped and instrumented gets one span."""

_TARGETS: tuple[tuple[str, str, str, bool], ...] = (
    ("openai.resources.chat.completions.completions", "Completions", "chat", False),
    ("openai.resources.chat.completions.completions", "AsyncCompletions", "chat", True),
    ("openai.resources.responses.responses", "Responses", "responses", False),
    ("openai.resources.responses.responses", "AsyncResponses", "responses", True),
)
"""(module, class, api, is_async) of every ``create`` method that is traced."""

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


_ITERABLE_ARGUMENTS = {"chat": ("messages", "tools"), "responses": ("tools",)}
"""Keyword arguments that the SDK accepts as any iterable (a generator can be read only once).

Responses ``input`` is typed as a string or a list: any other iterable is left to the SDK as it
is (and not read by the recording), so that the call behaves exactly as it would untraced.
"""


def _materialise(api: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with one-shot iterables read once into lists, which go on to the SDK too.

    Recording the request must not consume what the caller passed: a generator given as
    ``messages`` (or ``tools``, or Responses ``input``) is turned into a list once, and that same
    list is what both the span and the SDK see, so the request is the one an untraced call sends.
    """
    replaced: dict[str, Any] | None = None
    for key in _ITERABLE_ARGUMENTS[api]:
        value = kwargs.get(key)
        if value is None or isinstance(value, list | tuple | dict | str | bytes):
            continue
        if not hasattr(value, "__iter__") or type(value).__name__ in ("NotGiven", "Omit"):
            continue
        items = list(value)  # an iterable that fails would fail the untraced call the same way
        if replaced is None:
            replaced = dict(kwargs)
        replaced[key] = items
    return kwargs if replaced is None else replaced


def _accumulator(api: str) -> ChatAccumulator | ResponsesAccumulator:
    return ChatAccumulator() if api == "chat" else ResponsesAccumulator()


def _sync_wrapper(api: str) -> Wrapper:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        tracer = STATE.tracer
        if tracer is None or _INSIDE.get() or inside_llm_run():
            return wrapped(*args, **kwargs)
        kwargs = _materialise(api, kwargs)
        call = LLMCall.start(tracer, api, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        inside = _INSIDE.set(True)
        token = call.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            call.detach(token)
            _INSIDE.reset(inside)
        return _handle_result(call, result, is_async=False)

    return wrapper


def _async_wrapper(api: str) -> Wrapper:
    async def wrapper(
        wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        tracer = STATE.tracer
        if tracer is None or _INSIDE.get() or inside_llm_run():
            return await wrapped(*args, **kwargs)
        kwargs = _materialise(api, kwargs)
        call = LLMCall.start(tracer, api, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        inside = _INSIDE.set(True)
        token = call.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            call.detach(token)
            _INSIDE.reset(inside)
        return _handle_result(call, result, is_async=True)

    return wrapper


def _handle_result(call: LLMCall, result: Any, *, is_async: bool) -> Any:
    """A stream or raw response comes back proxied (recorded as it is read); else recorded now."""
    try:
        proxy = _proxy(call, result, is_async=is_async)
    except Exception:
        call.finish()
        return result
    if proxy is not None:
        return proxy
    call.finish(result)
    return result


def _proxy(call: LLMCall, result: Any, *, is_async: bool) -> Any:
    """The traced proxy of a stream or raw response (None for a parsed response)."""
    from openai import AsyncStream, Stream
    from openai._legacy_response import LegacyAPIResponse
    from openai._response import APIResponse, AsyncAPIResponse

    accumulator = _accumulator(call.api)
    if isinstance(result, Stream | AsyncStream):
        cls = TracedAsyncStream if is_async else TracedStream
        return cls(result, call, accumulator)
    if isinstance(result, LegacyAPIResponse) and not getattr(result, "_stream", True):
        # ``with_raw_response``: the body is read already, so parsing it consumes nothing, and
        # the SDK caches the parsed value for the caller's own ``parse()``.
        call.finish(result.parse())
        return result
    if isinstance(result, LegacyAPIResponse | APIResponse):  # streamed, or the caller reads it
        return TracedRawResponse(result, call, accumulator)
    if isinstance(result, AsyncAPIResponse):
        return TracedAsyncRawResponse(result, call, accumulator)
    return None


class _ClientMethod(wrapt.FunctionWrapper):  # type: ignore[type-arg]  # generic in stubs only
    """A ``create`` method of one client's resource, traced (see :func:`wrap_openai`)."""


def wrap_openai(client: ClientT) -> ClientT:
    """Trace one OpenAI client: the same client comes back, its ``create`` calls traced.

    Works for ``openai.OpenAI`` and ``openai.AsyncOpenAI`` (and their Azure variants); only this
    client's ``chat.completions`` and ``responses`` resources are wrapped (no class is patched).
    Wrapping twice is harmless, and a client both wrapped and covered by
    :class:`OpenAIInstrumentor` records one span per call. Clients derived later with
    ``client.with_options(...)`` are not wrapped.

    Args:
        client: An ``OpenAI`` or ``AsyncOpenAI`` client.

    Returns:
        ``client`` itself.
    """
    import openai

    is_async = isinstance(client, openai.AsyncOpenAI)
    for path, api in ((("chat", "completions"), "chat"), (("responses",), "responses")):
        resource: Any = client
        try:
            for name in path:
                resource = getattr(resource, name)
            create = resource.create
        except AttributeError:
            continue  # an SDK without this API
        if isinstance(create, _ClientMethod):
            continue
        wrapper = _async_wrapper(api) if is_async else _sync_wrapper(api)
        resource.create = _ClientMethod(create, wrapper)
    return client


@register_instrumentor
class OpenAIInstrumentor(Instrumentor):
    """Traces every OpenAI client of the process by patching the SDK's resource classes.

    ``OpenAIInstrumentor().instrument()`` (or ``lt.instrument("openai")``) wraps ``create`` of
    ``Completions``, ``AsyncCompletions``, ``Responses`` and ``AsyncResponses`` with ``wrapt``;
    :meth:`uninstrument` puts the originals back.
    """

    name = "openai"
    package = "openai"
    requires = ("openai", "wrapt")

    _originals: list[tuple[type, Any]]

    def _instrument(self) -> None:
        self._originals = []
        for module_name, class_name, api, is_async in _TARGETS:
            try:
                module = importlib.import_module(module_name)
                cls = getattr(module, class_name)
                original = cls.__dict__["create"]
            except (ImportError, AttributeError, KeyError):
                continue  # an SDK version without this API
            wrapper = _async_wrapper(api) if is_async else _sync_wrapper(api)
            wrapt.wrap_function_wrapper(cls, "create", wrapper)
            self._originals.append((cls, original))

    def _uninstrument(self) -> None:
        for cls, original in reversed(self._originals):
            cls.create = original
        self._originals = []
