"""Every route of the app makes an explicit auth decision, and with auth on, none is open."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from lucidtrace.ui import ServerSettings, create_app
from lucidtrace.ui.auth import api_principal, ingest_principal, page_principal, public

DECISIONS: dict[Callable[..., Any], str] = {
    public: "public",
    ingest_principal: "ingest",
    api_principal: "api",
    page_principal: "page",
}

PUBLIC_MOUNTS = {"/static"}
"""Mounts that serve files to anyone (the app's own CSS, scripts and icons)."""


@dataclass(frozen=True)
class Endpoint:
    """A route as the app serves it (router prefixes and router dependencies included)."""

    path: str
    methods: frozenset[str]
    dependant: Dependant | None
    route: Any


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every route of the app, included routers flattened (read generically from app.routes)."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        dependant = context.dependant if isinstance(route, APIRoute) else None
        found.append(
            Endpoint(
                path=str(context.path),
                methods=frozenset(context.methods or ()),
                dependant=dependant,
                route=route,
            )
        )
    return found


def decisions_of(endpoint: Endpoint) -> list[str]:
    found: list[str] = []
    assert endpoint.dependant is not None
    stack = [endpoint.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call in DECISIONS:
            found.append(DECISIONS[dependant.call])
        stack.extend(dependant.dependencies)
    return sorted(set(found))


@pytest.fixture(params=[False, True], ids=["auth-off", "auth-on"])
def app(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[FastAPI]:
    app = create_app(ServerSettings(database_url=sqlite_url, auth=request.param))
    yield app
    app.state.engine.dispose()


def undecided_routes(app: FastAPI) -> list[str]:
    undecided = []
    for endpoint in endpoints(app):
        if isinstance(endpoint.route, APIRoute):
            decisions = decisions_of(endpoint)
            if len(decisions) != 1:
                undecided.append(f"{sorted(endpoint.methods)} {endpoint.path}: {decisions}")
        elif isinstance(endpoint.route, Mount):
            if endpoint.path not in PUBLIC_MOUNTS:
                undecided.append(f"mount {endpoint.path}: not in the public allow-list")
        else:
            undecided.append(f"{type(endpoint.route).__name__} {endpoint.path}: no auth decision")
    return undecided


def test_every_route_declares_exactly_one_auth_dependency(app: FastAPI) -> None:
    assert undecided_routes(app) == []
    assert len(endpoints(app)) >= 8


def test_the_route_table_catches_a_route_without_a_decision(app: FastAPI) -> None:
    extra = APIRouter(prefix="/extra")

    @extra.get("/open")
    def open_route() -> None: ...

    @extra.get("/both", dependencies=[Depends(public), Depends(api_principal)])
    def both() -> None: ...

    guarded = APIRouter(prefix="/guarded", dependencies=[Depends(api_principal)])

    @guarded.get("/fine")
    def fine() -> None: ...

    app.include_router(extra)
    app.include_router(guarded)
    assert undecided_routes(app) == [
        "['GET'] /extra/open: []",
        "['GET'] /extra/both: ['api', 'public']",
    ]


def test_the_known_routes_have_the_expected_decisions(app: FastAPI) -> None:
    table = {
        (endpoint.path, method): decisions_of(endpoint)[0]
        for endpoint in endpoints(app)
        if isinstance(endpoint.route, APIRoute)
        for method in endpoint.methods
    }
    assert table[("/healthz", "GET")] == "public"
    assert table[("/login", "GET")] == "public"
    assert table[("/login", "POST")] == "public"
    assert table[("/logout", "POST")] == "page"
    assert table[("/v1/traces", "POST")] == "ingest"
    assert table[("/api/v1/spans", "POST")] == "ingest"
    assert table[("/openapi.json", "GET")] == "api"
    paths = {path for path, _ in table}
    assert "/docs" not in paths  # Swagger UI would load scripts from a CDN
    assert "/redoc" not in paths


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0123456789abcdef0123456789abcdef", path)


def test_with_auth_on_no_route_answers_without_credentials(sqlite_url: str) -> None:
    app = create_app(ServerSettings(database_url=sqlite_url, auth=True))
    checked = 0
    with TestClient(app, follow_redirects=False) as client:
        for endpoint in endpoints(app):
            if not isinstance(endpoint.route, APIRoute):
                continue
            [decision] = decisions_of(endpoint)
            if decision == "public":
                continue
            for method in sorted(endpoint.methods - {"HEAD"}):
                response = client.request(method, filled(endpoint.path))
                where = f"{method} {endpoint.path}"
                if decision == "page":
                    assert response.status_code == 303, where
                    assert response.headers["location"].startswith("/login?next=/"), where
                else:
                    assert response.status_code == 401, where
                    assert response.json()["detail"], where
                checked += 1
    app.state.engine.dispose()
    assert checked >= 5


def test_with_auth_off_the_schema_is_served(sqlite_url: str) -> None:
    app = create_app(ServerSettings(database_url=sqlite_url))
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
        assert "/v1/traces" in schema["paths"]
        assert client.get("/docs").status_code == 404
    app.state.engine.dispose()
