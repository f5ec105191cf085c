"""A small real HTTP server that implements the server's ingest contract, for the export tests.

``POST /api/v1/spans``: ``Authorization: Bearer KEY``, a JSON batch in lucidtrace's wire format,
optionally gzip-encoded; 200 ``{"accepted", "rejected", "items"}`` after the spans are stored
(in memory, or in a real lucidtrace store through the one ingest path when a database URL is
given); 401 for a bad key, 400 for a malformed batch, 413 past ``max_spans``; scripted replies
(503 + Retry-After, 500, ...) can be queued. ``POST /v1/traces``: OTLP/HTTP protobuf, counted.

It can be stopped and started again on the same port; stopping closes kept-alive connections
too. ``python -m tests.export.contract_server --port P [--database-url URL]`` runs it as a
process (to be SIGKILLed by the reliability tests).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lucidtrace.store._records import SpanRecord
from lucidtrace.store.wire import BATCH_PATH, WireFormatError, batch_from_wire

API_KEY = "lt-test-key"


@dataclass
class Reply:
    """A scripted reply, returned instead of the normal handling for one request."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    """What the server saw of one batch request."""

    at: float
    status: int
    spans: int
    connection: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    contract: ContractServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def setup(self) -> None:
        super().setup()
        self.server.contract._opened(self.request)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.contract._closed(self.request)

    def do_POST(self) -> None:
        contract = self.server.contract
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        if self.path == "/v1/traces":
            self._reply(*contract._otlp(raw))
            return
        if self.path != BATCH_PATH:
            self._reply(404, {"detail": "not found"})
            return
        status, body, headers, spans = contract._batch(self.headers.get("Authorization"), raw)
        contract._log(Request(time.monotonic(), status, spans, id(self.request)))
        self._reply(status, body, headers)

    def _reply(
        self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class ContractServer:
    """The ingest contract on ``127.0.0.1:port`` (0: any free port, kept across restarts).

    Args:
        port: The port (0 picks one on the first start).
        api_key: The key it accepts.
        database_url: Store accepted spans there (the real ingest path); else in memory.
        max_spans: Batches with more spans get 413.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        api_key: str = API_KEY,
        database_url: str | None = None,
        max_spans: int | None = None,
    ) -> None:
        self.port = port
        self.api_key = api_key
        self.max_spans = max_spans
        self.replies: deque[Reply] = deque()
        self.requests: list[Request] = []
        self.records: list[SpanRecord] = []
        self.otlp_spans: list[tuple[str, dict[str, str]]] = []  # (name, string attributes)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._engine: Any = None
        if database_url is not None:
            from lucidtrace.store.engine import create_engine

            self._engine = create_engine(database_url)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL (the exporter's ``endpoint``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def span_ids(self) -> list[str]:
        """Span ids of every span accepted, in arrival order (repeats included)."""
        with self._lock:
            return [record.span_id for record in self.records]

    def start(self) -> ContractServer:
        """Listen (again) on the port."""
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.contract = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (as a crashed server would)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop and dispose of the store engine."""
        self.stop()
        if self._engine is not None:
            self._engine.dispose()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until ``count`` spans were accepted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.span_ids) >= count:
                return True
            time.sleep(0.02)
        return False

    # ------------------------------------------------------------------ handler side

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _batch(
        self, authorization: str | None, raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str], int]:
        if authorization != f"Bearer {self.api_key}":
            return 401, {"detail": "invalid or missing API key"}, {}, 0
        try:
            records = batch_from_wire(json.loads(raw))
        except (ValueError, WireFormatError) as exc:
            return 400, {"detail": f"malformed batch: {exc}"}, {}, 0
        with self._lock:
            reply = self.replies.popleft() if self.replies else None
        if reply is not None:
            return reply.status, reply.body, reply.headers, len(records)
        if self.max_spans is not None and len(records) > self.max_spans:
            return 413, {"detail": f"more than {self.max_spans} spans"}, {}, len(records)
        if self._engine is not None:
            from lucidtrace.store.ingest import ingest_spans

            ingest_spans(self._engine, records)
        with self._lock:
            self.records.extend(records)
        items = [{"span_id": record.span_id, "status": "accepted"} for record in records]
        return 200, {"accepted": len(records), "rejected": 0, "items": items}, {}, len(records)

    def _otlp(self, raw: bytes) -> tuple[int, bytes]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(raw)
        spans = [
            (span.name, {kv.key: kv.value.string_value for kv in span.attributes})
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        with self._lock:
            self.otlp_spans.extend(spans)
        return 200, ExportTraceServiceResponse().SerializeToString()


def main() -> None:
    """Run the server as a process until it is killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args()
    server = ContractServer(args.port, database_url=args.database_url).start()
    if args.ready_file is not None:
        args.ready_file.write_text(str(server.port))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
