"""Spans written by a process that ended (or died) while the server was down reach it later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.export.conftest import free_port
from tests.export.contract_server import API_KEY, ContractServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def run_app(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.export.app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def app_env(url: str, spool: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LUCIDTRACE_ENDPOINT=url,
        LUCIDTRACE_API_KEY=API_KEY,
        LUCIDTRACE_SPOOL_DIR=str(spool),
        LUCIDTRACE_EXIT_TIMEOUT="2",
    )
    return env


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_the_next_process_delivers_what_an_earlier_one_spooled(how: str, spool_dir: Path) -> None:
    server = ContractServer(free_port())
    env = app_env(server.url, spool_dir)
    first = run_app(env, "--spans", "300", "--how", how)
    assert first.returncode == (-9 if how == "kill" else 0), first.stderr
    if how == "exit":
        assert "stay in the spool" in first.stderr  # said at exit, not silently
    assert server.span_ids == []
    server.start()
    try:
        second = run_app(env, "--spans", "1", "--flush-timeout", "60")
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout.splitlines()[-1])["flushed"] is True
        received = server.span_ids
        assert len(received) == 301
        assert len(set(received)) == 301
    finally:
        server.close()
    assert list((spool_dir / "segments").iterdir()) == []


POOL_SCRIPT = """
import json, multiprocessing as mp
import lucidtrace as lt
lt.configure()

@lt.traced(kind="tool")
def work(x):
    return x

@lt.traced(kind="agent", name="pool_agent")
def pool_agent():
    pool = mp.get_context("fork").Pool(2)
    result = pool.map(work, range(4))
    pool.close()
    pool.join()
    return result

pool_agent()
print(json.dumps(lt.flush(timeout=60)))
"""


def test_spans_of_forked_pool_workers_reach_the_server(
    server: ContractServer, spool_dir: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", POOL_SCRIPT],
        cwd=ROOT,
        env=app_env(server.url, spool_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "true"
    names = sorted(record.name for record in server.records)
    assert names == ["pool_agent"] + ["work"] * 4
