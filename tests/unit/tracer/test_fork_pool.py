"""Spans recorded in multiprocessing (fork) pool workers reach the store."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, sys
    import lucidtrace as lt
    lt.configure(sys.argv[1])

    @lt.traced(kind="tool")
    def work(x):
        lt.thought(f"w{x}")
        return x

    def flushed_work(x):
        # Work that may be terminated flushes when it is done (the README's advice).
        result = work(x)
        lt.flush()
        return result

    @lt.traced(kind="agent", name="pool_agent")
    def pool_agent(mode):
        pool = mp.get_context("fork").Pool(2)
        result = pool.map(work if mode == "close" else flushed_work, range(4))
        if mode == "close":
            pool.close()
        else:
            pool.terminate()  # SIGTERM to the workers
        pool.join()
        return result

    pool_agent(sys.argv[2])
    print("flushed", lt.flush(10))
    """
)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
# "close": the workers exit normally and export at exit; "terminate": they are killed with
# SIGTERM and what they flushed themselves is kept.
@pytest.mark.parametrize("mode", ["close", "terminate"])
def test_pool_worker_spans_are_stored(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "pool.db"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"sqlite:///{db}", mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(db)
    try:
        [(spans,)] = conn.execute("select span_count from traces where name = 'pool_agent'")
        thoughts = sorted(t for (t,) in conn.execute("select text from steps where type='THOUGHT'"))
    finally:
        conn.close()
    assert spans == 5
    assert thoughts == ["w0", "w1", "w2", "w3"]
