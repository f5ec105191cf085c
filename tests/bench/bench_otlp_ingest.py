"""OTLP/HTTP ingest throughput of a live ``lucidtrace serve`` on SQLite (target: >= 10x Phoenix).

Run: ``python tests/bench/bench_otlp_ingest.py [--spans N]``. Not collected by pytest.

Starts ``lucidtrace serve`` in a subprocess on a fresh SQLite store, then sends GenAI-attributed
agent spans (the realistic runs of ``bench_ingest.py``: agent with thoughts, LLM calls with
reasoning and tool-call parts, tools with ~1 KB results, retrievals of three documents) with the
OpenTelemetry SDK's ``OTLPSpanExporter`` (protobuf over HTTP) in batches of 512, one request at a
time, as a BatchSpanProcessor would. lucidtrace answers a request only after its transaction
committed, so spans/s here are spans stored durably per second; the store is counted at the end
to prove it.

The comparison figure is DESIGN.md section 8: on a 2-core machine, Phoenix 20.26 (SQLite,
``phoenix serve``) stored 164-170 spans/s of such spans (and acknowledged them before storing).
When ``arize-phoenix`` is importable the script also runs ``phoenix serve`` and sends it the
same batches (its figure is then acknowledged spans/s, an upper bound of what it stored).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import make_spans  # type: ignore[import-not-found]

from lucidtrace.store.engine import create_engine

BATCH = 512
PHOENIX_SPANS_PER_S = (164, 170)
TARGET_RATIO = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@contextlib.contextmanager
def running(argv: list[str], ready_url: str, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(ready_url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send(endpoint: str, spans: list[ReadableSpan]) -> float:
    """Seconds to export every span, batch by batch; raises when a batch is not accepted."""
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=120)
    began = time.perf_counter()
    for start in range(0, len(spans), BATCH):
        result = exporter.export(spans[start : start + BATCH])
        if result is not SpanExportResult.SUCCESS:
            raise RuntimeError(f"batch at span {start} was not accepted: {result}")
    elapsed = time.perf_counter() - began
    exporter.shutdown()
    return elapsed


def bench_lucidtrace(spans: list[ReadableSpan], tmp: Path) -> float:
    url = f"sqlite:///{tmp / 'lucidtrace.db'}"
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "lucidtrace",
        "serve",
        "--database-url",
        url,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with running(argv, f"http://127.0.0.1:{port}/readyz", {"LUCIDTRACE_AUTH": "false"}):
        send(f"http://127.0.0.1:{port}/v1/traces", spans[:BATCH])  # warm-up, counted below
        seconds = send(f"http://127.0.0.1:{port}/v1/traces", spans)
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM spans")).scalar_one()
    engine.dispose()
    if stored != len(spans):
        raise RuntimeError(f"sent {len(spans)} spans, the store holds {stored}")
    return len(spans) / seconds


def bench_phoenix(spans: list[ReadableSpan], tmp: Path) -> float | None:
    if importlib.util.find_spec("phoenix") is None:
        return None
    port = free_port()
    env = {"PHOENIX_PORT": str(port), "PHOENIX_WORKING_DIR": str(tmp / "phoenix")}
    argv = [sys.executable, "-m", "phoenix.server.main", "serve"]
    with running(argv, f"http://127.0.0.1:{port}/healthz", env):
        seconds = send(f"http://127.0.0.1:{port}/v1/traces", spans)
    return len(spans) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20 * BATCH)
    args = parser.parse_args()
    spans = make_spans(args.spans)
    print(f"{len(spans)} GenAI-attributed spans, batches of {BATCH}, OTLP/HTTP protobuf")
    with tempfile.TemporaryDirectory() as tmp:
        rate = bench_lucidtrace(spans, Path(tmp))
        print(f"lucidtrace serve (SQLite): {rate:,.0f} spans/s stored (acknowledged after commit)")
        low, high = PHOENIX_SPANS_PER_S
        print(
            f"vs Phoenix 20.26 figure of DESIGN.md ({low}-{high} spans/s): "
            f"{rate / high:.1f}x-{rate / low:.1f}x (target >= {TARGET_RATIO}x)"
        )
        phoenix = bench_phoenix(spans, Path(tmp))
        if phoenix is None:
            print("arize-phoenix is not importable: no side-by-side run (the figure above is used)")
        else:
            print(
                f"phoenix serve, same run: {phoenix:,.0f} spans/s acknowledged; "
                f"lucidtrace / phoenix = {rate / phoenix:.1f}x"
            )


if __name__ == "__main__":
    main()
