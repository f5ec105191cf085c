"""Parent links across asyncio tasks, threads and thread pools."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading

from opentelemetry.sdk.trace import ReadableSpan

import lucidtrace as lt
from lucidtrace.tracer import semconv
from tests.unit.tracer.conftest import Recorder


def _input(span: ReadableSpan) -> object:
    return json.loads(str(dict(span.attributes or {})[semconv.INPUT]))


def test_concurrent_asyncio_gather_keeps_each_child_under_its_parent(recorder: Recorder) -> None:
    @lt.traced(kind="tool")
    async def leaf(b: int, i: int) -> int:
        await asyncio.sleep(0.001 * ((b + i) % 3))  # interleave the tasks
        with lt.span(f"step-{b}-{i}"):
            await asyncio.sleep(0)
        return i

    @lt.traced(kind="agent")
    async def branch(b: int) -> list[int]:
        with lt.trace_attributes(session_id=f"s{b}"):
            return await asyncio.gather(*(leaf(b, i) for i in range(5)))

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(branch(b) for b in range(4)))

    assert asyncio.run(main()) == [list(range(5))] * 4
    spans = recorder.spans
    assert len(spans) == 4 + 4 * 5 * 2
    by_id = {s.context.span_id: s for s in spans}
    for b in range(4):
        for i in range(5):
            step = recorder.named(f"step-{b}-{i}")
            assert step.parent is not None
            leaf_span = by_id[step.parent.span_id]
            assert _input(leaf_span) == {"b": b, "i": i}
            assert leaf_span.parent is not None
            branch_span = by_id[leaf_span.parent.span_id]
            assert _input(branch_span) == {"b": b}
            assert branch_span.parent is None
            assert len({step.context.trace_id, branch_span.context.trace_id}) == 1
            assert dict(step.attributes or {})[semconv.SESSION_ID] == f"s{b}"


def test_context_thread_pool_links_tasks_to_the_submitting_span(recorder: Recorder) -> None:
    @lt.traced(kind="tool")
    def work(i: int) -> int:
        with lt.span(f"inner-{i}"):
            return i * i

    roots = []
    with lt.context.ThreadPoolExecutor(max_workers=4) as pool:
        futures = []
        for r in range(3):
            with lt.span(f"root-{r}") as root:
                roots.append(root.span.get_span_context().span_id)
                futures += [(r, pool.submit(work, r * 10 + i)) for i in range(6)]
        with lt.span("mapped"):
            assert list(pool.map(work, [100, 101])) == [10_000, 10_201]
        for _, f in futures:
            f.result()
    by_id = {s.context.span_id: s for s in recorder.spans}
    for r in range(3):
        for i in range(6):
            inner = recorder.named(f"inner-{r * 10 + i}")
            assert inner.parent is not None
            work_span = by_id[inner.parent.span_id]
            assert work_span.parent is not None
            assert work_span.parent.span_id == roots[r]
    mapped = recorder.named("mapped")
    inner = recorder.named("inner-100")
    assert inner.parent is not None
    assert by_id[inner.parent.span_id].parent.span_id == mapped.context.span_id  # type: ignore[union-attr]


def test_plain_thread_pool_loses_the_parent_and_wrap_restores_it(recorder: Recorder) -> None:
    @lt.traced
    def job() -> None:
        return None

    with lt.span("root") as root, concurrent.futures.ThreadPoolExecutor(2) as pool:
        pool.submit(job).result()  # plain pool: starts a new trace
        wrapped = lt.context.wrap(job)
        list(pool.map(lambda _: wrapped(), range(4)))  # one wrapped fn, called concurrently
    root_id = root.span.get_span_context().span_id
    jobs = [s for s in recorder.spans if s.name == "job"]
    assert sum(1 for s in jobs if s.parent is None) == 1
    assert sum(1 for s in jobs if s.parent is not None and s.parent.span_id == root_id) == 4


def test_context_thread_runs_under_the_creating_span(recorder: Recorder) -> None:
    @lt.traced
    def job() -> None:
        return None

    with lt.span("root") as root, lt.trace_attributes(session_id="threaded"):
        threads = [lt.context.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plain = threading.Thread(target=job)
    plain.start()
    plain.join()
    root_id = root.span.get_span_context().span_id
    jobs = [s for s in recorder.spans if s.name == "job"]
    assert sorted(s.parent.span_id if s.parent else 0 for s in jobs) == [
        0,
        root_id,
        root_id,
        root_id,
    ]
    sessions = sorted(str(dict(s.attributes or {}).get(semconv.SESSION_ID)) for s in jobs)
    assert sessions == ["None", "threaded", "threaded", "threaded"]
