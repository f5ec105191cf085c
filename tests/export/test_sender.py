"""The sender against a real HTTP server: acknowledgement, retries, refusals, keys, splits."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucidtrace.tracer.http_export import HttpSpanExporter
from tests.export.conftest import free_port
from tests.export.contract_server import API_KEY, ContractServer, Reply
from tests.export.spans import make_spans

FAST = {"min_backoff": 0.05, "max_backoff": 0.5, "auth_backoff": 0.2, "poll_interval": 0.1}


@pytest.fixture
def exporters() -> Iterator[list[HttpSpanExporter]]:
    made: list[HttpSpanExporter] = []
    yield made
    for exporter in made:
        exporter.shutdown()


def _exporter(
    made: list[HttpSpanExporter], url: str, spool: Path, **options: object
) -> HttpSpanExporter:
    settings = {"api_key": API_KEY, "spool_dir": spool, **FAST, **options}
    exporter = HttpSpanExporter(url, **settings)  # type: ignore[arg-type]
    made.append(exporter)
    return exporter


def _segments(spool: Path, where: str = "segments") -> list[str]:
    return sorted(p.name for p in (spool / where).iterdir() if p.name.endswith(".seg"))


def test_spans_are_sent_in_order_and_deleted_after_the_ack(
    server: ContractServer, spool_dir: Path, exporters: list[HttpSpanExporter]
) -> None:
    exporter = _exporter(exporters, server.url, spool_dir)
    batches = [make_spans(5, prefix=f"b{i}") for i in range(4)]
    for batch in batches:
        assert exporter.export_counted(batch) == (5, 0)
    assert exporter.wait_sent(10)
    names = [record.name for record in server.records]
    assert names == [span.name for batch in batches for span in batch]
    assert _segments(spool_dir) == []
    assert exporter.stats.sent == 20
    assert exporter.stats.pending == 0


def test_one_kept_alive_connection_carries_the_batches(
    server: ContractServer, spool_dir: Path, exporters: list[HttpSpanExporter]
) -> None:
    exporter = _exporter(exporters, server.url, spool_dir)
    for i in range(5):
        exporter.export_counted(make_spans(2, prefix=f"k{i}"))
        assert exporter.wait_sent(10)
    assert len({request.connection for request in server.requests}) == 1


def test_503_is_retried_after_the_retry_after_delay(
    server: ContractServer, spool_dir: Path, exporters: list[HttpSpanExporter]
) -> None:
    server.replies.append(Reply(503, {"detail": "overloaded"}, {"Retry-After": "2"}))
    exporter = _exporter(exporters, server.url, spool_dir, min_backoff=0.01, max_backoff=5.0)
    exporter.export_counted(make_spans(3))
    assert server.wait_for(3, timeout=20)
    refused, accepted = server.requests
    assert (refused.status, accepted.status) == (503, 200)
    # With a 10 ms backoff, only Retry-After can account for the wait.
    assert accepted.at - refused.at >= 1.9
    assert _segments(spool_dir) == []


def test_500_and_429_are_retried_until_accepted(
    server: ContractServer, spool_dir: Path, exporters: list[HttpSpanExporter]
) -> None:
    server.replies.extend([Reply(500), Reply(429), Reply(502), Reply(408)])
    exporter = _exporter(exporters, server.url, spool_dir)
    exporter.export_counted(make_spans(4))
    assert exporter.wait_sent(20)
    assert [r.status for r in server.requests] == [500, 429, 502, 408, 200]
    assert len(server.span_ids) == 4


def test_a_refused_connection_keeps_the_spans_until_the_server_starts(
    spool_dir: Path, exporters: list[HttpSpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    server = ContractServer(free_port())
    exporter = _exporter(exporters, server.url, spool_dir)
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        exporter.export_counted(make_spans(6))
        assert not exporter.wait_sent(0.5)
    assert len(_segments(spool_dir)) == 1
    assert exporter.stats.pending == 6
    assert "cannot send spans" in caplog.text
    assert "retried with backoff" in caplog.text
    server.start()
    try:
        assert exporter.wait_sent(20)
        assert len(server.span_ids) == 6
    finally:
        server.close()


def test_failed_attempts_back_off(spool_dir: Path, exporters: list[HttpSpanExporter]) -> None:
    # A server that accepts connections and closes them at once: every attempt fails.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        exporter = _exporter(exporters, url, spool_dir, min_backoff=0.2, max_backoff=30.0)
        exporter.export_counted(make_spans(2))
        stop.wait(2.5)
    finally:
        stop.set()
        thread.join()
        listener.close()
    # Waits of about 0.2, 0.4, 0.8, 1.6 s (halved at worst by jitter): a handful of attempts
    # (each may reconnect once), not the hundreds a loop without backoff would make.
    assert 2 <= len(accepted) <= 14
    assert _segments(spool_dir) != []


def test_a_batch_the_server_refuses_is_dead_lettered_and_reported_once(
    server: ContractServer,
    spool_dir: Path,
    exporters: list[HttpSpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.replies.append(Reply(400, {"detail": "spans[0].kind must be a string"}))
    exporter = _exporter(exporters, server.url, spool_dir)
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        exporter.export_counted(make_spans(3, prefix="bad"))
        assert not exporter.wait_sent(10)  # the server refused what was waiting
        exporter.export_counted(make_spans(2, prefix="good"))
        assert exporter.wait_sent(10)
    assert [r.status for r in server.requests] == [400, 200]  # not retried
    assert [r.name for r in server.records] == ["good-0", "good-root"]
    dead = _segments(spool_dir, "dead")
    assert len(dead) == 1
    reason = (spool_dir / "dead" / (dead[0] + ".reason.txt")).read_text()
    assert "HTTP 400: spans[0].kind must be a string" in reason
    assert exporter.stats.dead_lettered == 3
    assert caplog.text.count("refused a batch of 3 span(s) (HTTP 400: spans[0].kind") == 1


def test_a_bad_key_keeps_the_spool_and_a_good_key_delivers_it(
    server: ContractServer,
    spool_dir: Path,
    exporters: list[HttpSpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = _exporter(exporters, server.url, spool_dir, api_key="not-the-key")
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        wrong.export_counted(make_spans(4))
        assert not wrong.wait_sent(1.0)
    assert {r.status for r in server.requests} == {401}
    assert len(server.requests) >= 2  # retried, slowly
    assert _segments(spool_dir) != []
    assert _segments(spool_dir, "dead") == []
    assert "refused the API key (HTTP 401: invalid or missing API key)" in caplog.text
    assert "LUCIDTRACE_API_KEY" in caplog.text
    assert caplog.text.count("refused the API key") == 1
    wrong.shutdown()
    right = _exporter(exporters, server.url, spool_dir)
    assert right.wait_sent(10)
    assert len(server.span_ids) == 4


def test_a_batch_too_large_is_split_until_the_server_takes_it(
    spool_dir: Path, exporters: list[HttpSpanExporter]
) -> None:
    server = ContractServer(max_spans=3).start()
    try:
        exporter = _exporter(exporters, server.url, spool_dir)
        spans = make_spans(10)
        exporter.export_counted(spans)
        assert exporter.wait_sent(20)
        assert [r.name for r in server.records] == [s.name for s in spans]  # order kept
        assert 413 in {r.status for r in server.requests}
        assert _segments(spool_dir, "dead") == []
    finally:
        server.close()


def test_a_damaged_segment_is_moved_aside_and_the_rest_is_sent(
    server: ContractServer,
    spool_dir: Path,
    exporters: list[HttpSpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Written by an earlier run: one segment got damaged on disk meanwhile.
    earlier = _exporter(exporters, "http://127.0.0.1:9", spool_dir)
    earlier.stop()
    for i in range(3):
        earlier.export_counted(make_spans(2, prefix=f"e{i}"))
    first = _segments(spool_dir)[0]
    path = spool_dir / "segments" / first
    path.write_bytes(path.read_bytes()[:-5])
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        later = _exporter(exporters, server.url, spool_dir)
        assert not later.wait_sent(10)  # one segment could not be sent
    assert [r.name for r in server.records] == ["e1-0", "e1-root", "e2-0", "e2-root"]
    assert _segments(spool_dir, "corrupt") == [first]
    assert "is damaged" in caplog.text


def test_two_processes_sharing_a_spool_send_each_segment_once(
    server: ContractServer, spool_dir: Path, exporters: list[HttpSpanExporter]
) -> None:
    writer = _exporter(exporters, "http://127.0.0.1:9", spool_dir)
    writer.stop()
    expected = []
    for i in range(40):
        spans = make_spans(2, prefix=f"s{i}")
        expected += [span.context.span_id for span in spans]
        writer.export_counted(spans)
    senders = [_exporter(exporters, server.url, spool_dir) for _ in range(3)]
    assert all(sender.wait_sent(30) for sender in senders)
    received = server.span_ids
    assert len(received) == len(expected)
    assert sorted(received) == sorted(f"{span_id:016x}" for span_id in expected)


def test_export_never_touches_the_network(
    spool_dir: Path, exporters: list[HttpSpanExporter]
) -> None:
    # A server that accepts connections and never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        exporter = _exporter(exporters, url, spool_dir, timeout=60.0)
        done = []

        def export() -> None:
            for i in range(20):
                done.append(exporter.export_counted(make_spans(2, prefix=f"n{i}")))

        thread = threading.Thread(target=export)
        thread.start()
        thread.join(30)
        assert not thread.is_alive()
        assert done == [(2, 0)] * 20
        assert len(_segments(spool_dir)) == 20
    finally:
        listener.close()


def test_spans_the_server_rejects_one_by_one_are_counted_not_resent(
    server: ContractServer,
    spool_dir: Path,
    exporters: list[HttpSpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = [
        {"span_id": "a" * 16, "status": "stored"},
        {"span_id": "b" * 16, "status": "rejected", "error": "value too long for the database"},
    ]
    server.replies.append(Reply(200, {"accepted": 1, "rejected": 1, "items": items}))
    exporter = _exporter(exporters, server.url, spool_dir)
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        exporter.export_counted(make_spans(2))
        assert not exporter.wait_sent(10)  # a span was lost: flush says so
    assert (exporter.stats.sent, exporter.stats.rejected) == (1, 1)
    assert len(server.requests) == 1  # acknowledged: not sent again
    assert _segments(spool_dir) == []
    assert "refused 1 span(s) of a batch: value too long for the database" in caplog.text
