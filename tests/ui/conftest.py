"""Fixtures for the page tests: a store with real traced runs, and a client on the app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from lucidtrace.ui import ServerSettings, create_app
from tests.ui.seed import SeededTraces, seed_demo


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """A client on the app serving ``database_url`` (auth off)."""
    app = create_app(ServerSettings(database_url=database_url))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def demo(database_url: str) -> SeededTraces:
    """The demo runs (see :func:`tests.ui.seed.seed_demo`) stored in ``database_url``."""
    return seed_demo(database_url)
