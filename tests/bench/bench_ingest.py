"""Exporter throughput into SQLite vs raw batched SQLAlchemy-core inserts of the same span rows.

Run: ``python tests/bench/bench_ingest.py [--batches N]``. Prints spans/s of both and their ratio
(target: the exporter at >= 0.3x raw inserts). Not collected by pytest.

* exporter: ``StoreSpanExporter.export(batch)`` with batches of 512 realistic agent spans (agent
  with thoughts and an answer, LLM calls with reasoning and tool-call parts, tools with ~1 KB
  results, retrievals of three documents): mapping, spans, steps, documents, trace aggregates.
* raw: ``insert(spans)`` executemany of the very span rows the mapper produces (plus the minimal
  trace rows the foreign key needs), one transaction per batch, into a fresh store of the same
  kind (same SQLite settings).

The benchmark's own inputs (10k SDK spans and their prepared rows) stay in memory for the whole
run; they are frozen out of the garbage collector before timing, so a full collection of them,
which lands on whichever side happens to be running at that moment, does not decide the ratio.
Collections of what each side allocates itself still count.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lucidtrace.store.engine import create_engine
from lucidtrace.store.ingest import derive_span, record_from_readable_span
from lucidtrace.store.models import DEFAULT_PROJECT_ID, Base, Project, Span, Trace
from lucidtrace.tracer import semconv as sc
from lucidtrace.tracer.exporters import StoreSpanExporter

BATCH = 512
WORDS = (
    "the of population capital river glacier volcano census island north data report".split()  # noqa: SIM905
)


def text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def make_spans(count: int, seed: int = 7) -> list[ReadableSpan]:
    """About ``count`` finished spans of ReAct-style agent runs (8 spans per run)."""
    rng = random.Random(seed)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    while len(memory.get_finished_spans()) < count:
        with tracer.start_as_current_span(
            "agent", attributes={sc.SPAN_KIND: "AGENT", sc.INPUT: json.dumps(text(rng, 200))}
        ) as root:
            for turn in range(2):
                root.add_event(sc.EVENT_THOUGHT, {sc.THOUGHT_TEXT: text(rng, 300)})
                call_id = f"call-{turn}"
                with tracer.start_as_current_span(
                    "chat small-model",
                    attributes={
                        sc.OPERATION_NAME: "chat",
                        sc.REQUEST_MODEL: "small-model",
                        sc.USAGE_INPUT_TOKENS: 300,
                        sc.USAGE_OUTPUT_TOKENS: 80,
                        sc.OUTPUT_MESSAGES: json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": [
                                        {"type": "reasoning", "content": text(rng, 400)},
                                        {
                                            "type": "tool_call",
                                            "id": call_id,
                                            "name": "search",
                                            "arguments": {"query": text(rng, 40)},
                                        },
                                    ],
                                }
                            ]
                        ),
                    },
                ):
                    pass
                with tracer.start_as_current_span(
                    "execute_tool search",
                    attributes={
                        sc.SPAN_KIND: "TOOL",
                        sc.TOOL_NAME: "search",
                        sc.TOOL_CALL_ID: call_id,
                        sc.TOOL_CALL_ARGUMENTS: json.dumps({"query": text(rng, 40)}),
                        sc.TOOL_CALL_RESULT: json.dumps(text(rng, 1000)),
                    },
                ):
                    pass
            docs = [
                {
                    "id": f"doc-{i}",
                    "content": text(rng, 330),
                    "score": 0.9 - i / 10,
                    "source": "wiki",
                }
                for i in range(3)
            ]
            with tracer.start_as_current_span(
                "retrieval",
                attributes={
                    sc.SPAN_KIND: "RETRIEVER",
                    sc.RETRIEVAL_QUERY: text(rng, 40),
                    sc.RETRIEVAL_DOCUMENTS: json.dumps(docs),
                },
            ):
                pass
            with tracer.start_as_current_span("format", attributes={sc.SPAN_KIND: "CHAIN"}):
                pass
            answer = text(rng, 300)
            root.add_event(
                sc.EVENT_ANSWER, {sc.ANSWER_TEXT: answer, sc.ANSWER_CITATIONS: ("doc-0",)}
            )
            root.set_attribute(sc.OUTPUT, json.dumps(answer))
    provider.shutdown()
    return list(memory.get_finished_spans())[:count]


def run(
    tmp: str, batches: list[list[ReadableSpan]], rows: list[list[dict[str, Any]]]
) -> tuple[float, float]:
    """Seconds spent by the exporter and by raw inserts, batch by batch, interleaved.

    Interleaving keeps the ratio fair on a shared machine: a burst of load elsewhere slows both.
    """
    exporter_engine = create_engine(f"sqlite:///{tmp}/exporter.db")
    raw_engine = create_engine(f"sqlite:///{tmp}/raw.db")
    exporter = StoreSpanExporter(engine=exporter_engine)
    tables = Base.metadata.tables
    spans, traces = tables[Span.__tablename__], tables[Trace.__tablename__]
    with raw_engine.begin() as conn:
        conn.execute(
            sa.insert(tables[Project.__tablename__]),
            [{"id": DEFAULT_PROJECT_ID, "name": DEFAULT_PROJECT_ID, "created_ns": 0}],
        )
    exporter_s = raw_s = 0.0
    for batch, batch_rows in zip(batches, rows, strict=True):
        started = time.perf_counter()
        if exporter.export(batch) is not SpanExportResult.SUCCESS:
            raise SystemExit("export failed")
        exporter_s += time.perf_counter() - started

        started = time.perf_counter()
        trace_ids = sorted({row["trace_id"] for row in batch_rows})
        with raw_engine.begin() as conn:
            existing = set(
                conn.execute(sa.select(traces.c.trace_id).where(traces.c.trace_id.in_(trace_ids)))
                .scalars()
                .all()
            )
            new = [
                {"project_id": DEFAULT_PROJECT_ID, "trace_id": t, "updated_ns": 0}
                for t in trace_ids
                if t not in existing
            ]
            if new:
                conn.execute(sa.insert(traces), new)
            conn.execute(sa.insert(spans), batch_rows)
        raw_s += time.perf_counter() - started
    exporter_engine.dispose()
    raw_engine.dispose()
    return exporter_s, raw_s


def main() -> None:
    """Run both benchmarks in one process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also time the exporter's CPU-only phases (record conversion, mapping) on their own",
    )
    args = parser.parse_args()
    spans = make_spans(args.batches * BATCH)
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    rows = [
        [
            {
                **derive_span(record_from_readable_span(span)).span,
                "project_id": DEFAULT_PROJECT_ID,
                "ingested_ns": 0,
            }
            for span in batch
        ]
        for batch in batches
    ]
    size = sum(len(json.dumps(r["attributes"])) for r in rows[0]) / len(rows[0])
    gc.collect()
    gc.freeze()  # the inputs above are the harness's, not the code under test's
    with tempfile.TemporaryDirectory() as tmp:
        exporter_s, raw_s = run(tmp, batches, rows)
    total = len(spans)
    print(f"spans: {total} in batches of {BATCH}; mean attributes JSON {size:.0f} bytes/span")
    print(f"raw SQLAlchemy-core inserts:  {total / raw_s:10.0f} spans/s")
    print(f"StoreSpanExporter.export:     {total / exporter_s:10.0f} spans/s")
    print(f"ratio exporter/raw:           {raw_s / exporter_s:10.2f}x  (target >= 0.3x)")
    if args.phases:
        phases(batches, exporter_s)


def phases(batches: list[list[ReadableSpan]], exporter_s: float) -> None:
    """Per-batch time of the exporter's pure phases, measured apart from the comparison."""
    convert_s = map_s = 0.0
    for batch in batches:
        started = time.perf_counter()
        records = [record_from_readable_span(span) for span in batch]
        convert_s += time.perf_counter() - started
        started = time.perf_counter()
        for item in records:
            derive_span(item)
        map_s += time.perf_counter() - started
    count = len(batches)
    per_batch = {
        "ReadableSpan -> SpanRecord": convert_s,
        "mapping (derive_span)": map_s,
        "writing + commit (the rest)": exporter_s - convert_s - map_s,
    }
    print(f"exporter per batch of {BATCH}: {exporter_s / count * 1000:.1f} ms")
    for name, seconds in per_batch.items():
        print(f"  {name:30s} {seconds / count * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
