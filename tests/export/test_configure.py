"""``lt.configure(endpoint=...)``: the tracer ships through the spool; stats, flush, shutdown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

import lucidtrace as lt
from tests.export.conftest import free_port
from tests.export.contract_server import API_KEY, ContractServer


def _agent(count: int, prefix: str = "tool") -> None:
    with lt.span("agent", kind="agent"):
        lt.thought("I will call the tools")
        for i in range(count - 1):
            with lt.tool_call(f"{prefix}-{i}", {"i": i}) as call:
                call.set_result(i)


def test_spans_reach_the_server_and_flush_waits_for_the_ack(
    server: ContractServer, spool_dir: Path
) -> None:
    lt.configure(endpoint=server.url, api_key=API_KEY, spool_dir=spool_dir)
    _agent(10)
    assert lt.flush(timeout=20)
    assert len(server.span_ids) == 10  # acknowledged before flush() returned
    stats = lt.get_stats()
    assert (stats.sent, stats.unsent, stats.failed, stats.dropped) == (10, 0, 0, 0)
    assert list((spool_dir / "segments").iterdir()) == []


def test_the_environment_configures_the_endpoint(
    server: ContractServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUCIDTRACE_ENDPOINT", server.url)
    monkeypatch.setenv("LUCIDTRACE_API_KEY", API_KEY)
    monkeypatch.chdir(tmp_path)
    lt.configure()
    _agent(3)
    assert lt.flush(timeout=20)
    assert len(server.span_ids) == 3
    assert not (tmp_path / "lucidtrace.db").exists()  # the server replaces the embedded store
    # The default spool: under the user's cache directory.
    assert list((tmp_path / "cache" / "lucidtrace" / "spool").iterdir())


def test_spool_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "env-spool"
    monkeypatch.setenv("LUCIDTRACE_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("LUCIDTRACE_SPOOL_DIR", str(spool))
    monkeypatch.setenv("LUCIDTRACE_SPOOL_MAX_BYTES", "1")
    lt.configure()
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        _agent(3)
        assert not lt.flush(timeout=5)
    assert lt.get_stats().dropped == 3
    assert (spool / "segments").is_dir()
    assert "is full" in caplog.text


def test_a_server_that_is_down_leaves_the_spans_on_disk_for_the_next_run(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = ContractServer(free_port())
    lt.configure(endpoint=server.url, api_key=API_KEY, spool_dir=spool_dir)
    _agent(5)
    assert not lt.flush(timeout=1)
    assert lt.get_stats().unsent == 5
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        assert not lt.shutdown(timeout=2)
    assert "stay in the spool" in caplog.text
    assert len(list((spool_dir / "segments").iterdir())) == 1
    server.start()
    try:
        lt.configure(endpoint=server.url, api_key=API_KEY, spool_dir=spool_dir)
        assert lt.flush(timeout=20)  # waits for what the earlier run left too
        assert len(server.span_ids) == 5
    finally:
        server.close()


def test_past_the_cap_spans_are_dropped_counted_and_reported(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lt.configure(
        endpoint=f"http://127.0.0.1:{free_port()}",
        spool_dir=spool_dir,
        spool_max_bytes=3000,
        export_batch_size=5,
        flush_interval=0,
    )
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        for _ in range(20):
            _agent(5)
            lt.flush(timeout=0.2)
    stats = lt.get_stats()
    assert stats.dropped > 0
    assert stats.exported + stats.dropped == 100
    assert stats.failed == 0
    assert stats.unsent == stats.exported
    assert caplog.text.count("is full") == 1
    total = sum(p.stat().st_size for p in (spool_dir / "segments").iterdir())
    assert total <= 3000


def test_server_and_store_at_once(server: ContractServer, spool_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    lt.configure(url, endpoint=server.url, api_key=API_KEY, spool_dir=spool_dir)
    _agent(4)
    assert lt.flush(timeout=20)
    lt.shutdown()
    assert len(server.span_ids) == 4
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM spans")).scalar() == 4
    engine.dispose()


def test_a_bad_endpoint_argument_is_a_clear_error(spool_dir: Path) -> None:
    with pytest.raises(ValueError, match="endpoint must be an http"):
        lt.configure(endpoint="localhost:6006", spool_dir=spool_dir)
    with pytest.raises(ValueError, match="spool_max_bytes"):
        lt.configure(endpoint="http://localhost:6006", spool_max_bytes=0)


def test_an_unusable_spool_directory_leaves_tracing_off_without_crashing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.ERROR, logger="lucidtrace"):
        lt.configure(endpoint="http://127.0.0.1:9", spool_dir=blocker / "spool")
    assert not lt.get_stats().enabled
    assert "LUCIDTRACE_SPOOL_DIR" in caplog.text
    _agent(2)  # a no-op, not a crash


def test_a_bad_endpoint_in_the_environment_leaves_tracing_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LUCIDTRACE_ENDPOINT", "not a url")
    with caplog.at_level(logging.ERROR, logger="lucidtrace"):
        lt.configure()
    assert not lt.get_stats().enabled
    assert "endpoint must be an http" in caplog.text
