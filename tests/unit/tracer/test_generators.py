"""@traced on async functions, generators and async generators."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.trace import StatusCode

import lucidtrace as lt
from lucidtrace.tracer import semconv
from tests.unit.tracer.conftest import Recorder


def test_async_function_is_traced_with_children(recorder: Recorder) -> None:
    @lt.traced(kind="tool")
    async def fetch(url: str) -> int:
        await asyncio.sleep(0)
        with lt.span("parse"):
            await asyncio.sleep(0)
        return len(url)

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch("https://x")) == 9
    fetch_span, parse = recorder.named("fetch"), recorder.named("parse")
    assert parse.parent is not None
    assert parse.parent.span_id == fetch_span.context.span_id
    assert json.loads(recorder.attrs("fetch")[semconv.OUTPUT]) == 9


def test_async_function_exception(recorder: Recorder) -> None:
    @lt.traced
    async def boom() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        asyncio.run(boom())
    assert recorder.named("boom").status.status_code is StatusCode.ERROR


def test_generator_span_covers_the_iteration_and_records_items(recorder: Recorder) -> None:
    @lt.traced(kind="llm")
    def stream(n: int) -> Iterator[str]:
        for i in range(n):
            with lt.span(f"chunk-{i}"):
                pass
            yield f"t{i}"

    gen = stream(3)
    assert inspect.isgenerator(gen)
    assert recorder.spans == []  # nothing runs before iteration
    with lt.span("consumer"):
        first = next(gen)
        # Between steps the consumer's span is current again, not the generator's.
        with lt.span("between"):
            pass
        rest = list(gen)
    assert [first, *rest] == ["t0", "t1", "t2"]
    s = recorder.named("stream")
    consumer = recorder.named("consumer")
    assert s.parent is not None
    assert s.parent.span_id == consumer.context.span_id
    for i in range(3):
        chunk = recorder.named(f"chunk-{i}")
        assert chunk.parent is not None
        assert chunk.parent.span_id == s.context.span_id
    between = recorder.named("between")
    assert between.parent is not None
    assert between.parent.span_id == consumer.context.span_id
    assert json.loads(recorder.attrs("stream")[semconv.OUTPUT]) == ["t0", "t1", "t2"]
    assert json.loads(recorder.attrs("stream")[semconv.INPUT]) == {"n": 3}


def test_generator_send_throw_and_return_value(recorder: Recorder) -> None:
    @lt.traced
    def echo() -> Iterator[object]:
        received = yield "ready"
        try:
            yield f"got {received}"
        except KeyError:
            yield "handled"
        return "done"

    def consume() -> object:
        gen = echo()
        assert next(gen) == "ready"
        assert gen.send("x") == "got x"
        assert gen.throw(KeyError("k")) == "handled"
        with pytest.raises(StopIteration) as stop:
            next(gen)
        return stop.value.value

    assert consume() == "done"
    assert json.loads(recorder.attrs("echo")[semconv.OUTPUT]) == ["ready", "got x", "handled"]


def test_generator_closed_early_ends_its_span_without_error(recorder: Recorder) -> None:
    closed = []

    @lt.traced
    def numbers() -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)

    gen = numbers()
    assert [next(gen), next(gen)] == [0, 1]
    gen.close()
    assert closed == [True]
    span = recorder.named("numbers")
    assert span.status.status_code is not StatusCode.ERROR
    assert json.loads(dict(span.attributes or {})[semconv.OUTPUT]) == [0, 1]


def test_generator_exception_is_recorded_and_reraised(recorder: Recorder) -> None:
    @lt.traced
    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("mid-stream")

    with pytest.raises(RuntimeError, match="mid-stream"):
        list(failing())
    span = recorder.named("failing")
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})[semconv.ERROR_TYPE] == "RuntimeError"


def test_generator_output_is_bounded(recorder: Recorder) -> None:
    @lt.traced
    def many() -> Iterator[int]:
        yield from range(1_005)

    assert sum(1 for _ in many()) == 1_005
    output = json.loads(recorder.attrs("many")[semconv.OUTPUT])
    assert output[:3] == [0, 1, 2]
    assert len(output) == 1_001
    assert output[-1] == "[5 more items]"


def test_async_generator(recorder: Recorder) -> None:
    @lt.traced(kind="llm")
    async def stream() -> AsyncIterator[str]:
        for word in ("a", "b"):
            await asyncio.sleep(0)
            with lt.span(f"inner-{word}"):
                pass
            yield word

    async def main() -> list[str]:
        with lt.span("consumer"):
            return [w async for w in stream()]

    assert inspect.isasyncgenfunction(stream)
    assert asyncio.run(main()) == ["a", "b"]
    s = recorder.named("stream")
    assert s.parent is not None
    assert s.parent.span_id == recorder.named("consumer").context.span_id
    inner = recorder.named("inner-b")
    assert inner.parent is not None
    assert inner.parent.span_id == s.context.span_id
    assert json.loads(recorder.attrs("stream")[semconv.OUTPUT]) == ["a", "b"]


def test_async_generator_asend_athrow_aclose(recorder: Recorder) -> None:
    @lt.traced
    async def agen() -> AsyncIterator[str]:
        got = yield "ready"
        try:
            yield f"got {got}"
        except KeyError:
            yield "handled"
        yield "never"

    async def main() -> None:
        gen = agen()
        assert await gen.asend(None) == "ready"
        assert await gen.asend("x") == "got x"
        assert await gen.athrow(KeyError("k")) == "handled"
        await gen.aclose()

    asyncio.run(main())
    span = recorder.named("agen")
    assert span.status.status_code is not StatusCode.ERROR
    assert json.loads(dict(span.attributes or {})[semconv.OUTPUT]) == ["ready", "got x", "handled"]


def test_async_generator_exception(recorder: Recorder) -> None:
    @lt.traced
    async def agen() -> AsyncIterator[int]:
        yield 1
        raise ValueError("broken stream")

    async def main() -> list[int]:
        return [x async for x in agen()]

    with pytest.raises(ValueError, match="broken stream"):
        asyncio.run(main())
    assert recorder.named("agen").status.status_code is StatusCode.ERROR


def test_generators_work_unconfigured() -> None:
    @lt.traced
    def gen() -> Iterator[int]:
        x = yield 1
        yield x

    @lt.traced
    async def agen() -> AsyncIterator[int]:
        x = yield 1
        yield x

    g = gen()
    assert next(g) == 1
    assert g.send(5) == 5

    async def main() -> list[int]:
        a = agen()
        return [await a.asend(None), await a.asend(7)]

    assert asyncio.run(main()) == [1, 7]
