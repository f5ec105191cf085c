"""Every response carries the security headers, unhandled errors included; no Host redirects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lucidtrace.store.engine import create_engine
from lucidtrace.ui import ServerSettings, create_app


@pytest.fixture
def app(database_url: str) -> Iterator[FastAPI]:
    engine: sa.Engine = create_engine(database_url)
    app = create_app(ServerSettings(), engine=engine)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("an unexpected failure")

    yield app
    engine.dispose()


def test_an_unhandled_exception_answers_500_with_the_security_headers(app: FastAPI) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "an unexpected failure" not in response.text


def test_a_trailing_slash_is_not_redirected_to_the_host_the_client_named(app: FastAPI) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/traces/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert "evil.example" not in response.headers.get("location", "")
        assert response.status_code == 404
        assert "Content-Security-Policy" in response.headers
        assert client.get("/traces").status_code == 200
