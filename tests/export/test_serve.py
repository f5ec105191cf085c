"""Against ``lucidtrace serve`` itself (auth on, a real key): the spool, a bad key, OTLP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import lucidtrace as lt
from lucidtrace.store.engine import create_engine
from tests.export.conftest import free_port
from tests.export.servers import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[ServerProcess, sa.Engine]]:
    database_url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = create_engine(database_url)
    server = ServerProcess("serve", free_port(), database_url, tmp_path)
    server.start()
    yield server, engine
    server.kill()
    engine.dispose()


def _names(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT name FROM spans")).scalars())


def _agent() -> None:
    with lt.span("agent", kind="agent"):
        lt.thought("look it up")
        with lt.tool_call("search", {"q": "Iceland"}) as call:
            call.set_result("387,758")


def test_spans_are_stored_by_the_server(
    serve: tuple[ServerProcess, sa.Engine], spool_dir: Path
) -> None:
    server, engine = serve
    lt.configure(endpoint=server.url, api_key=server.api_key, spool_dir=spool_dir)
    _agent()
    assert lt.flush(timeout=30)
    assert _names(engine) == ["agent", "execute_tool search"]


def test_a_wrong_key_keeps_the_spool_until_the_right_one_is_configured(
    serve: tuple[ServerProcess, sa.Engine], spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, engine = serve
    with caplog.at_level(logging.WARNING, logger="lucidtrace"):
        lt.configure(endpoint=server.url, api_key="lt_000000000000_wrong", spool_dir=spool_dir)
        _agent()
        assert not lt.flush(timeout=3)
    assert "refused the API key (HTTP 401" in caplog.text
    assert _names(engine) == []
    assert lt.get_stats().unsent == 2
    lt.configure(endpoint=server.url, api_key=server.api_key, spool_dir=spool_dir)
    assert lt.flush(timeout=30)
    assert _names(engine) == ["agent", "execute_tool search"]


def test_the_otlp_destination_reaches_the_servers_otlp_endpoint(
    serve: tuple[ServerProcess, sa.Engine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, engine = serve
    monkeypatch.chdir(tmp_path)
    lt.configure(
        otlp_endpoint=server.url, otlp_headers={"Authorization": f"Bearer {server.api_key}"}
    )
    _agent()
    assert lt.flush(timeout=30)
    assert _names(engine) == ["agent", "execute_tool search"]
