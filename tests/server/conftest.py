"""Fixtures for server tests: a real uvicorn server on a free port.

``live_server`` runs :func:`lucidtrace.ui.create_app` under uvicorn in a thread and yields a
:class:`LiveServer` (``.url`` is the base URL, ``.app`` and ``.engine`` the app and its store).
Its settings come from the ``server_settings`` fixture (a :class:`ServerSettings` on the test's
``database_url``); override that fixture, or use :func:`running_server` directly, for others.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from lucidtrace.ui import ServerSettings, create_app


@dataclass(frozen=True)
class LiveServer:
    """A running server: its base URL (no trailing slash), app and store."""

    url: str
    app: FastAPI
    engine: sa.Engine
    settings: ServerSettings


@contextmanager
def running_server(
    settings: ServerSettings, *, engine: sa.Engine | None = None
) -> Iterator[LiveServer]:
    """Run the app under uvicorn on a free loopback port until the block ends."""
    app = create_app(settings, engine=engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(
            url=f"http://127.0.0.1:{port}", app=app, engine=app.state.engine, settings=settings
        )
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        if engine is None:
            app.state.engine.dispose()


@pytest.fixture
def server_settings(database_url: str) -> ServerSettings:
    """The settings ``live_server`` runs with (auth off, default limits, the test's store)."""
    return ServerSettings(database_url=database_url)


@pytest.fixture
def live_server(server_settings: ServerSettings) -> Iterator[LiveServer]:
    """A running server with ``server_settings``."""
    with running_server(server_settings) as server:
        yield server
