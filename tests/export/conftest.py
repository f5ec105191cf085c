"""Fixtures: an unconfigured tracer around each test, a contract server, a spool directory."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lucidtrace.tracer._config import _reset_for_tests
from tests.export.contract_server import ContractServer


@pytest.fixture(autouse=True)
def _unconfigured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in (
        "LUCIDTRACE_ENDPOINT",
        "LUCIDTRACE_API_KEY",
        "LUCIDTRACE_SPOOL_DIR",
        "LUCIDTRACE_SPOOL_MAX_BYTES",
        "LUCIDTRACE_OTLP_ENDPOINT",
        "LUCIDTRACE_OTLP_HEADERS",
        "LUCIDTRACE_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    # The default spool lives under the user's cache dir: keep it inside the test's directory.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _reset_for_tests()
    yield
    _reset_for_tests()


@pytest.fixture
def server() -> Iterator[ContractServer]:
    """A running contract server (in memory)."""
    srv = ContractServer().start()
    yield srv
    srv.close()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """A fresh spool directory."""
    return tmp_path / "spool"


def free_port() -> int:
    """A port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
