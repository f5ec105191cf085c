"""Signing out ends the session everywhere: a copy of the cookie stops working."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from lucidtrace.store.engine import create_engine
from lucidtrace.store.models import ApiKey
from lucidtrace.ui import ServerSettings, create_app, keys
from lucidtrace.ui.auth import SESSION_COOKIE


@pytest.fixture
def app_and_key(database_url: str) -> Iterator[tuple[TestClient, sa.Engine, str]]:
    engine = create_engine(database_url)
    with Session(engine) as session, session.begin():
        key, _ = keys.create_key(session, "alpha")
    app = create_app(ServerSettings(auth=True, session_secret="s" * 32), engine=engine)
    with TestClient(app) as client:
        yield client, engine, key
    engine.dispose()


def sign_in(client: TestClient, key: str) -> str:
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    response = client.post(
        "/login",
        data={"api_key": key, "csrf_token": token.group(1), "next": "/traces"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie


def test_a_cookie_kept_from_before_sign_out_is_refused(
    app_and_key: tuple[TestClient, sa.Engine, str],
) -> None:
    client, engine, key = app_and_key
    stolen = sign_in(client, key)
    with TestClient(client.app) as other:
        other.cookies.set(SESSION_COOKIE, stolen)
        assert other.get("/api/v1/traces").status_code == 200  # a second browser, signed in
        page = client.get("/traces").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        out = client.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        assert other.get("/api/v1/traces").status_code == 401
        assert other.get("/traces", follow_redirects=False).status_code == 303
    with engine.connect() as conn:
        assert conn.execute(sa.select(ApiKey.sessions_not_before_ns)).scalar_one() is not None
    # Signing in again starts a session that works; the API key itself keeps working.
    sign_in(client, key)
    assert client.get("/api/v1/traces").status_code == 200
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/traces", headers=bearer).status_code == 200
