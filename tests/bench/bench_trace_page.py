"""Trace page at scale: server render time of ``GET /traces/{id}`` and first screen in Chromium.

Run: ``python tests/bench/bench_trace_page.py [--spans 10000] [--database-url URL] [--no-browser]``
(``--spans 100000`` for the 100k-span case). Not collected by pytest.

Stores one trace of ``--spans`` spans (an agent span, chains of 100 spans each, every chain with a
thought, tool calls with results and plain tool spans; ~1 KB results) through the ingest mapper,
then measures, on a fresh store of the chosen kind (default: a SQLite file):

* server: ``GET /traces/{id}`` through the ASGI app in process (TestClient), after one request
  for a small trace (templates compiled): the first request for the big trace (cold: its tree
  order is computed) and the median of the next ones (warm), plus one continuation request;
* browser: with Debian's chromium (when found), the time from navigation to the first span row
  and the audit trail being visible (``DOMContentLoaded`` of the page, served by uvicorn).

Targets (docs: DESIGN.md section 8): a 10k-span trace opens in < 1 s; a 100k-span trace's first
screen in < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastapi.testclient import TestClient

from lucidtrace.store import create_engine, ingest_spans
from lucidtrace.store._records import SpanEvent, SpanRecord
from lucidtrace.tracer import semconv as sc
from lucidtrace.ui import ServerSettings, create_app

TRACE_ID = "7ace" * 8
WARMUP_ID = "0a" * 16
CHAIN = 100


def make_records(count: int, trace_id: str = TRACE_ID, first_id: int = 1) -> list[SpanRecord]:
    """``count`` spans of one trace: an agent, chains of ``CHAIN`` spans, tools under them."""
    start = time.time_ns() - count * 2_000_000
    records: list[SpanRecord] = []
    root = f"{first_id:016x}"
    records.append(
        SpanRecord(
            trace_id=trace_id,
            span_id=root,
            parent_span_id=None,
            name="bench-agent",
            kind="INTERNAL",
            start_ns=start,
            end_ns=start + count * 2_000_000,
            status_code="ok",
            status_message=None,
            attributes={sc.SPAN_KIND: "AGENT"},
        )
    )
    next_id = first_id + 1
    clock = start + 1000
    chain_id = root
    result = json.dumps({"rows": ["result " * 20] * 6})
    while len(records) < count:
        position = (len(records) - 1) % CHAIN
        if position == 0:
            chain_id = f"{next_id:016x}"
            next_id += 1
            records.append(
                SpanRecord(
                    trace_id=trace_id,
                    span_id=chain_id,
                    parent_span_id=root,
                    name=f"chain {len(records) // CHAIN}",
                    kind="INTERNAL",
                    start_ns=clock,
                    end_ns=clock + CHAIN * 2_000_000,
                    status_code="ok",
                    status_message=None,
                    attributes={sc.SPAN_KIND: "CHAIN"},
                    events=(
                        SpanEvent(
                            sc.EVENT_THOUGHT, clock, {sc.THOUGHT_TEXT: "I should look it up."}
                        ),
                    ),
                )
            )
            continue
        span_id = f"{next_id:016x}"
        next_id += 1
        tool = position % 10 == 1
        attributes = {sc.SPAN_KIND: "TOOL"}
        if tool:
            attributes |= {
                sc.TOOL_NAME: "search",
                sc.TOOL_CALL_ARGUMENTS: json.dumps({"query": f"q{next_id}"}),
                sc.TOOL_CALL_RESULT: result,
            }
        records.append(
            SpanRecord(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=chain_id,
                name=f"execute_tool search {next_id}" if tool else f"step {next_id}",
                kind="INTERNAL",
                start_ns=clock,
                end_ns=clock + 1_500_000,
                status_code="ok",
                status_message=None,
                attributes=attributes,
            )
        )
        clock += 2_000_000
    return records


def store(url: str, count: int) -> None:
    engine = create_engine(url)
    try:
        records = make_records(count)
        for offset in range(0, len(records), 5000):
            ingest_spans(engine, records[offset : offset + 5000])
        ingest_spans(engine, make_records(50, WARMUP_ID, first_id=10 * count))
    finally:
        engine.dispose()


def bench_server(url: str, repeats: int) -> dict[str, float]:
    engine = create_engine(url)
    try:
        client = TestClient(create_app(engine=engine))
        # A small trace first, so that template compilation (once per process) is not counted.
        assert client.get(f"/traces/{WARMUP_ID}").status_code == 200
        started = time.perf_counter()
        first = client.get(f"/traces/{TRACE_ID}")
        cold = time.perf_counter() - started
        assert first.status_code == 200, first.status_code
        warm = []
        for _ in range(repeats):
            started = time.perf_counter()
            client.get(f"/traces/{TRACE_ID}")
            warm.append(time.perf_counter() - started)
        started = time.perf_counter()
        chunk = client.get(f"/api/v1/ui/traces/{TRACE_ID}/tree?offset=500&limit=500")
        more = time.perf_counter() - started
        assert chunk.status_code == 200
        return {
            "cold": cold,
            "warm": statistics.median(warm),
            "more": more,
            "bytes": len(first.content),
        }
    finally:
        engine.dispose()


def bench_browser(url: str) -> list[float] | None:
    chromium = os.environ.get("LUCIDTRACE_TEST_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    from tests.server.conftest import running_server

    with running_server(ServerSettings(database_url=url)) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/healthz")
            return [open_page(page, f"{server.url}/traces/{TRACE_ID}") for _ in range(2)]
        finally:
            browser.close()


def open_page(page: Any, url: str) -> float:
    """Seconds from navigation to the span tree and the audit trail being visible."""
    started = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.locator(".span-row[data-span-id]").first.wait_for()
    page.locator(".step").first.wait_for()
    elapsed = time.perf_counter() - started
    timing = page.evaluate(
        """() => {
          const n = performance.getEntriesByType('navigation')[0];
          const paint = performance.getEntriesByName('first-contentful-paint')[0];
          return {ttfb: n.responseStart - n.requestStart,
                  dom: n.domContentLoadedEventEnd - n.requestStart,
                  paint: paint ? paint.startTime - n.requestStart : -1};
        }"""
    )
    print(
        f"  {elapsed * 1000:.0f} ms to the first screen; from the request: first byte "
        f"{timing['ttfb']:.0f} ms, DOMContentLoaded {timing['dom']:.0f} ms, first contentful "
        f"paint {timing['paint']:.0f} ms"
    )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    target = 1.0 if args.spans <= 10_000 else 2.0
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        store(url, args.spans)
        print(f"stored {args.spans:,} spans in {time.perf_counter() - started:.1f} s ({url})")
        print(f"load average: {os.getloadavg()}")
        server = bench_server(url, args.repeats)
        print(
            f"GET /traces/{{id}}: first {server['cold'] * 1000:.0f} ms, "
            f"then median {server['warm'] * 1000:.0f} ms; page {server['bytes'] / 1024:.0f} KiB; "
            f"next 500 spans {server['more'] * 1000:.0f} ms"
        )
        print(
            f"  target < {target:.0f} s: first request {server['cold'] / target:.2f}x of target, "
            f"{'met' if server['cold'] < target else 'MISSED'}"
        )
        if not args.no_browser:
            print("browser (Chromium, page served by uvicorn): cold, then warm")
            screens = bench_browser(url)
            if screens is None:
                print("  chromium or playwright not found: skipped")
            else:
                for label, seconds in zip(("cold", "warm"), screens, strict=True):
                    print(
                        f"  first screen {label}: {seconds / target:.2f}x of the {target:.0f} s "
                        f"target, {'met' if seconds < target else 'MISSED'}"
                    )


if __name__ == "__main__":
    main()
