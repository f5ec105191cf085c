"""Shared fixtures: database URLs for SQLite and a real PostgreSQL server, capability gates.

``--db sqlite`` / ``--db postgresql`` / ``--db all`` (default: ``all``) chooses the backends that
the ``database_url`` fixture runs on. PostgreSQL is found through ``LUCIDTRACE_TEST_POSTGRES_URL``
(a server URL whose user may create databases); each test gets a fresh database on it.

Locally, a test whose capability is missing (no PostgreSQL server, no model, no browser) skips
with the reason. Under CI (``CI=true``) every capability must be there, so a missing one fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_ENV = "LUCIDTRACE_TEST_POSTGRES_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--db`` backend switch."""
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql", "all"),
        default="all",
        help="database backends for tests that take `database_url` (default: all)",
    )


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI) when a capability a test needs is missing."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI must provide this capability: {reason}")
    pytest.skip(reason)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``database_url`` over the chosen backends, marking PostgreSQL runs."""
    if "database_url" not in metafunc.fixturenames:
        return
    choice = metafunc.config.getoption("--db")
    backends = ["sqlite", "postgresql"] if choice == "all" else [choice]
    params = [
        pytest.param(b, marks=[pytest.mark.postgres] if b == "postgresql" else [], id=b)
        for b in backends
    ]
    metafunc.parametrize("database_backend", params, indirect=True)


@pytest.fixture
def database_backend(request: pytest.FixtureRequest) -> str:
    """The backend of this run of a ``database_url`` test."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def postgres_server_url() -> str:
    """URL of the PostgreSQL server used by the tests (skips or fails when there is none)."""
    url = os.environ.get(POSTGRES_ENV, "")
    require(bool(url), f"set {POSTGRES_ENV} to a PostgreSQL server URL to run PostgreSQL tests")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    from lucidtrace.store.engine import normalize_url

    server = sa.make_url(normalize_url(postgres_server_url))
    name = f"lt_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        require(False, f"PostgreSQL server at {POSTGRES_ENV} is not reachable: {exc}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite file in a fresh temporary directory."""
    return f"sqlite:///{tmp_path / 'lucidtrace.db'}"


@pytest.fixture
def database_url(database_backend: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on each chosen backend (see ``--db``)."""
    if database_backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(request.getfixturevalue("sqlite_url"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last.

    While Playwright's sync API has a browser open, an asyncio loop is marked running on the main
    thread, so any later test that calls ``asyncio.run()`` would fail. The browser is opened once
    (the session-scoped ``browser`` fixture) when the first browser test runs; after that only
    browser tests follow. The sort is stable: the order within each group is kept.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (Debian's, through Playwright's sync API) shared by browser tests."""
    from tests.e2e.conftest import CHROMIUM_ENV, chromium_path

    executable = chromium_path()
    require(executable is not None, f"no Chromium found: install chromium or set {CHROMIUM_ENV}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright is not installed: pip install playwright")
        raise
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()
