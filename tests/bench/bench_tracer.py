"""Per-span cost on the caller's thread: lucidtrace vs. the plain OpenTelemetry SDK.

Run: ``python tests/bench/bench_tracer.py`` (prints figures; asserts nothing).

Both sides run in the same process, interleaved repetition by repetition:

* ``lucidtrace``: ``with lt.span("step"):`` with lucidtrace configured on a null exporter
  (masking on, as by default);
* ``otel``: ``with tracer.start_as_current_span("step"):`` on a separate SDK ``TracerProvider``
  with a ``BatchSpanProcessor`` and a null exporter; ``otel+attrs`` also sets the two attributes
  every lucidtrace span carries (``lucidtrace.span.kind``, ``gen_ai.operation.name``);
* ``no-op``: ``lt.span`` and a ``@lt.traced`` call with nothing configured.

Wall time per span is what the agent feels, but on a shared machine it also carries other
processes' load; the calling thread's CPU time is the steadier figure. The export threads' CPU
time (which competes with the agent for the GIL) is shown too: lucidtrace's includes masking.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import lucidtrace as lt
from lucidtrace.tracer import semconv

Samples = list[tuple[float, float, float]]


class NullExporter(SpanExporter):
    """Accepts every span and does nothing with it."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _timed(
    loop: Callable[[int], None], n: int, flush: Callable[[], object] = lambda: None
) -> tuple[float, float, float]:
    """µs per span: wall and caller CPU of the loop; other threads' CPU, flush included."""
    wall, cpu, process = time.perf_counter(), time.thread_time(), time.process_time()
    loop(n)
    wall_us = (time.perf_counter() - wall) / n * 1e6
    cpu_us = (time.thread_time() - cpu) / n * 1e6
    flush()
    others = (time.process_time() - process) - (time.thread_time() - cpu)
    return wall_us, cpu_us, others / n * 1e6


def main() -> None:
    """Print µs per span for each variant and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per repetition")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repetitions")
    args = parser.parse_args()

    otel_provider = TracerProvider()
    otel_provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    otel = otel_provider.get_tracer("bench")
    same_attrs = {semconv.SPAN_KIND: "CHAIN", semconv.OPERATION_NAME: "invoke_workflow"}

    def lucid_loop(n: int) -> None:
        span = lt.span
        for _ in range(n):
            with span("step"):
                pass

    def otel_loop(n: int) -> None:
        start = otel.start_as_current_span
        for _ in range(n):
            with start("step"):
                pass

    def otel_attrs_loop(n: int) -> None:
        start = otel.start_as_current_span
        for _ in range(n):
            with start("step", attributes=same_attrs):
                pass

    @lt.traced
    def traced_fn(x: int) -> int:
        return x

    def traced_loop(n: int) -> None:
        for i in range(n):
            traced_fn(i)

    def plain_fn(x: int) -> int:
        return x

    def plain_loop(n: int) -> None:
        for i in range(n):
            plain_fn(i)

    lt.configure(exporter=NullExporter())
    variants: dict[str, tuple[Callable[[int], None], Callable[[], object]]] = {
        "lucidtrace span()": (lucid_loop, lt.flush),
        "otel start_as_current_span": (otel_loop, otel_provider.force_flush),
        "otel + same 2 attributes": (otel_attrs_loop, otel_provider.force_flush),
        "lucidtrace @traced call": (traced_loop, lt.flush),
    }
    results: dict[str, Samples] = {name: [] for name in variants}
    for loop, flush in variants.values():  # warm-up
        loop(2_000)
        flush()
    for _ in range(args.repeat):
        for name, (loop, flush) in variants.items():
            results[name].append(_timed(loop, args.spans, flush))
    stats = lt.get_stats()
    lt.shutdown()

    noop: dict[str, Samples] = {
        "no-op lt.span()": [],
        "no-op @traced call": [],
        "plain call": [],
    }
    for _ in range(args.repeat):
        noop["no-op lt.span()"].append(_timed(lucid_loop, args.spans))
        noop["no-op @traced call"].append(_timed(traced_loop, args.spans))
        noop["plain call"].append(_timed(plain_loop, args.spans))
    otel_provider.shutdown()

    print(f"{args.repeat} interleaved repetitions x {args.spans} spans; median per span")
    _report({**results, **noop})
    print(f"lucidtrace spans exported: {stats.exported}, dropped: {stats.dropped}")


def _med(values: Samples, i: int) -> float:
    return statistics.median(v[i] for v in values)


def _report(results: dict[str, Samples]) -> None:
    print(f"{'variant':30} {'wall µs':>8} {'caller cpu µs':>14} {'export thread cpu µs':>21}")
    for name, values in results.items():
        print(f"{name:30} {_med(values, 0):8.2f} {_med(values, 1):14.2f} {_med(values, 2):21.2f}")
    base, base_attrs = results["otel start_as_current_span"], results["otel + same 2 attributes"]
    ours = results["lucidtrace span()"]
    print()
    print(f"ratio lucidtrace / otel (wall):          {_med(ours, 0) / _med(base, 0):.2f}x")
    print(f"ratio lucidtrace / otel+attrs (wall):    {_med(ours, 0) / _med(base_attrs, 0):.2f}x")
    print(f"ratio lucidtrace / otel (caller cpu):    {_med(ours, 1) / _med(base, 1):.2f}x")
    print(f"ratio lucidtrace / otel+attrs (cpu):     {_med(ours, 1) / _med(base_attrs, 1):.2f}x")


if __name__ == "__main__":
    main()
