"""Trace list latency through the JSON API on a store of 100k traces (target: p95 < 100 ms).

Run: ``python tests/bench/bench_trace_list.py [--traces N] [--repeat R]``. Not collected by
pytest. Fills a fresh SQLite store (and a fresh PostgreSQL database too when
``LUCIDTRACE_TEST_POSTGRES_URL`` is set) with N realistic traces (a root span, three steps of
varied text, a finding on one trace in ten), by bulk inserts of the rows ingest would write (the
search index is kept by the same triggers / index as in production), then times requests to
``GET /api/v1/traces`` through the real app (FastAPI ``TestClient``):

* first page (50 traces, newest first, with the total count),
* filtered by ``verdict=flagged``,
* full-text searches: two mid-frequency words, and a word found in most steps (worst case),
* a deep keyset page (the cursor of the page at 90% of the list),
* ``check=citation_support&check_status=flagged``.

Prints p50 and p95 of each and their ratio to the 100 ms target (below 1.0 meets it), and the
query plan of the first page.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lucidtrace.store import create_engine, list_trace_page
from lucidtrace.store.engine import normalize_url
from lucidtrace.store.models import Finding, Project, Span, Step, Trace
from lucidtrace.ui.app import create_app
from lucidtrace.ui.settings import ServerSettings
from tests.query.plans import query_plan

TARGET_S = 0.100
CHUNK = 5_000
SECOND = 1_000_000_000
T0 = 1_790_000_000 * SECOND
_SYLLABLES = "ka lo mi ne ru sa ti vo ze pa gu ri do fe ha ju".split()  # noqa: SIM905
VOCABULARY = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES][:3000]
"""Words of the synthetic texts, drawn with Zipf frequencies (rank r has weight 1/r)."""
_WEIGHTS = [1 / rank for rank in range(1, len(VOCABULARY) + 1)]
RARE_QUERY = f"{VOCABULARY[300]} {VOCABULARY[500]}"
"""Two mid-frequency words (each in about 1% of the steps)."""
COMMON_QUERY = VOCABULARY[2]
"""A word in most steps: the worst case of a search."""


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(VOCABULARY, weights=_WEIGHTS, k=words))


def _rows(start: int, count: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    traces, spans, steps, findings = [], [], [], []
    for index in range(start, start + count):
        trace_id = f"{index + 1:08x}{uuid.UUID(int=rng.getrandbits(128)).hex[:24]}"
        span_id = f"{index + 1:016x}"
        begin = T0 + index * SECOND
        end = begin + rng.randint(1, 30) * SECOND
        flagged = index % 10 == 0
        traces.append(
            {
                "project_id": "default",
                "trace_id": trace_id,
                "name": rng.choice(["research agent", "support bot", "planner", "rag qa"]),
                "root_span_id": span_id,
                "session_id": f"session-{index // 5}",
                "user_id": f"user-{index % 100}",
                "status": "error" if index % 37 == 0 else "ok",
                "start_ns": begin,
                "end_ns": end,
                "input": _text(rng, 12),
                "output": _text(rng, 20),
                "tags": ["prod"] if index % 2 else ["dev"],
                "metadata": {},
                "models": [rng.choice(["gpt-4o", "qwen2.5-7b", "llama-3.1-8b"])],
                "input_tokens": rng.randint(10, 2000),
                "output_tokens": rng.randint(10, 500),
                "reasoning_tokens": 0,
                "span_count": 1,
                "step_count": 3,
                "verdict": "flagged" if flagged else ("clear" if index % 3 else "unchecked"),
                "updated_ns": end,
            }
        )
        spans.append(
            {
                "project_id": "default",
                "span_id": span_id,
                "trace_id": trace_id,
                "parent_span_id": None,
                "kind": "AGENT",
                "name": "agent",
                "start_ns": begin,
                "end_ns": end,
                "status": "ok",
                "attributes": {"lucidtrace.span.kind": "AGENT"},
                "events": [],
                "resource": {"service.name": "bench"},
                "ingested_ns": end,
            }
        )
        for seq, kind in enumerate(("THOUGHT", "ACTION", "ANSWER")):
            steps.append(
                {
                    "project_id": "default",
                    "span_id": span_id,
                    "seq": seq,
                    "trace_id": trace_id,
                    "ts_ns": begin + seq,
                    "type": kind,
                    "text": _text(rng, rng.randint(8, 40)),
                    "is_error": False,
                    "citations": [],
                }
            )
        if flagged or index % 10 == 1:
            findings.append(
                {
                    "project_id": "default",
                    "trace_id": trace_id,
                    "check_name": "citation_support",
                    "check_version": "1",
                    "status": "flagged" if flagged else "passed",
                    "evidence": {},
                    "proxy": False,
                    "created_ns": end,
                }
            )
    return {"traces": traces, "spans": spans, "steps": steps, "findings": findings}


def fill(engine: sa.Engine, total: int) -> float:
    """Insert ``total`` traces; return the seconds it took."""
    rng = random.Random(11)
    began = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.insert(Project), [{"id": "default", "name": "default", "created_ns": 1}])
    for start in range(0, total, CHUNK):
        rows = _rows(start, min(CHUNK, total - start), rng)
        with engine.begin() as conn:
            for model, key in ((Trace, "traces"), (Span, "spans"), (Step, "steps")):
                conn.execute(sa.insert(model), rows[key])
            if rows["findings"]:
                conn.execute(sa.insert(Finding), rows["findings"])
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - began


def time_requests(client: TestClient, url: str, repeat: int) -> tuple[float, float, int]:
    """p50 and p95 seconds of ``repeat`` GETs of ``url`` (after one warm-up), and item count."""
    response = client.get(url)
    response.raise_for_status()
    items = len(response.json().get("items", []))
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        client.get(url).raise_for_status()
        times.append(time.perf_counter() - began)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, items


def first_page_plan(engine: sa.Engine) -> str:
    """The query plan of what the store runs for the first page."""
    plan = query_plan(engine, lambda session: list_trace_page(session, limit=50))
    return plan.replace("\n", " | ")


def run(label: str, url: str, total: int, repeat: int) -> None:
    engine = create_engine(url)
    try:
        seconds = fill(engine, total)
        print(f"\n[{label}] filled {total} traces (+{3 * total} steps) in {seconds:.1f} s")
        with Session(engine) as session:
            deep = list_trace_page(session, limit=1, offset=int(total * 0.9)).next_cursor
        app = create_app(ServerSettings(database_url=url), engine=engine)
        cases = {
            "/healthz (floor)": "/healthz",
            "first page": "/api/v1/traces?limit=50",
            "verdict=flagged": "/api/v1/traces?limit=50&verdict=flagged",
            "search (rare)": f"/api/v1/traces?limit=50&q={RARE_QUERY.replace(' ', '%20')}",
            "search (common)": f"/api/v1/traces?limit=50&q={COMMON_QUERY}",
            "deep cursor page": f"/api/v1/traces?limit=50&cursor={deep}",
            "check flagged": "/api/v1/traces?limit=50&check=citation_support&check_status=flagged",
        }
        print(f"{'query':<18} {'p50 ms':>8} {'p95 ms':>8} {'p95/target':>11} {'items':>6}")
        with TestClient(app) as client:
            for name, path in cases.items():
                p50, p95, items = time_requests(client, path, repeat)
                print(
                    f"{name:<18} {p50 * 1000:8.1f} {p95 * 1000:8.1f} "
                    f"{p95 / TARGET_S:11.2f} {items:6d}"
                )
        print(f"plan of the first page: {first_page_plan(engine)}")
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{tmp}/bench.db", args.traces, args.repeat)
    server = os.environ.get("LUCIDTRACE_TEST_POSTGRES_URL")
    if not server:
        print("\n(set LUCIDTRACE_TEST_POSTGRES_URL to run the same on PostgreSQL)")
        return
    base = sa.make_url(normalize_url(server))
    name = f"lt_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        run("PostgreSQL", url, args.traces, args.repeat)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
