"""Reliability: the server killed mid-run, and a server that never answers.

(a) An application sends 10,000 spans while the server process is SIGKILLed and restarted: after
    ``flush()`` exactly 10,000 spans are stored, none twice (ingest is idempotent, so a batch
    resent after a lost acknowledgement is harmless), on SQLite and on PostgreSQL.
(b) The server is unreachable for the whole run (its port accepts connections and never
    answers): ending spans costs no network I/O, the queue stays small, and once a server
    listens there the spool delivers everything.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import lucidtrace as lt
from lucidtrace.store.engine import create_engine
from lucidtrace.tracer._config import STATE
from tests.export.conftest import free_port
from tests.export.servers import ROOT, ServerProcess
from tests.export.test_restart import app_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 10_000


def _stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*), count(DISTINCT span_id) FROM spans")).one()
    return int(rows[0]), int(rows[1])


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[str, sa.Engine]]:
    engine = create_engine(database_url)  # creates the schema before the server starts
    yield database_url, engine
    engine.dispose()


@pytest.mark.parametrize("kind", ["serve", "contract"])
def test_server_killed_midway_loses_and_duplicates_nothing(
    kind: str, store: tuple[str, sa.Engine], tmp_path: Path
) -> None:
    database_url, engine = store
    server = ServerProcess(kind, free_port(), database_url, tmp_path)
    server.start()
    env = app_env(server.url, tmp_path / "spool")
    env["LUCIDTRACE_API_KEY"] = server.api_key
    app = subprocess.Popen(
        [sys.executable, "-m", "tests.export.app", "--spans", str(TOTAL), "--pause", "0.02"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _stored(engine)[0] < TOTAL // 5:
            assert app.poll() is None, app.communicate()
            assert time.monotonic() < deadline, "nothing arrived"
            time.sleep(0.05)
        server.kill()
        killed_at = _stored(engine)[0]
        time.sleep(1.0)
        server.start()
        out, err = app.communicate(timeout=240)
    finally:
        if app.poll() is None:
            app.kill()
        server.kill()
    assert killed_at < TOTAL, "the kill came after everything was stored: not midway"
    assert app.returncode == 0, err
    result = json.loads(out.splitlines()[-1])
    assert result["flushed"] is True
    assert (result["sent"], result["failed"], result["dropped"]) == (TOTAL, 0, 0)
    assert _stored(engine) == (TOTAL, TOTAL)


@pytest.mark.parametrize("kind", ["serve", "contract"])
def test_an_unreachable_server_costs_the_app_nothing_and_gets_everything_later(
    kind: str, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = create_engine(database_url)
    # A port that accepts connections (the kernel completes the handshake) and never answers.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(128)
    port = blackhole.getsockname()[1]
    server = ServerProcess(kind, port, database_url, tmp_path)
    spool = tmp_path / "spool"
    batch = 100
    lt.configure(
        endpoint=server.url,
        api_key=server.api_key,
        spool_dir=spool,
        export_batch_size=batch,
        flush_interval=0.05,
    )
    processor = STATE.processor
    assert processor is not None
    most_queued = 0
    for _ in range(TOTAL // 10):
        with lt.span("agent", kind="agent"):
            for _ in range(9):
                with lt.span("step"):
                    pass
        most_queued = max(most_queued, len(processor._queue))
        time.sleep(0.001)  # an agent does some work between runs
    # Everything ended is on disk without any answer from the server ...
    assert processor.flush(60)
    stats = lt.get_stats()
    assert (stats.queued, stats.exported, stats.unsent, stats.sent) == (0, TOTAL, TOTAL, 0)
    # ... and the queue in memory never held more than a few batches: the worker writes to
    # disk and never waits on the network (blocked on it, it would hold all 10,000).
    assert most_queued <= 10 * batch
    assert not lt.flush(timeout=0.5)  # not acknowledged: reported, not hidden
    blackhole.close()
    try:
        server.start()
        assert lt.flush(timeout=120)
        assert lt.get_stats().sent == TOTAL
    finally:
        server.kill()
    assert _stored(engine) == (TOTAL, TOTAL)
    engine.dispose()
    assert os.listdir(spool / "segments") == []
