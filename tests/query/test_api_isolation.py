"""Project isolation of the query API, with auth on and real API keys of two projects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from lucidtrace.store import add_finding
from lucidtrace.store.models import Attribution
from lucidtrace.ui.app import create_app
from lucidtrace.ui.keys import create_key
from lucidtrace.ui.settings import ServerSettings
from tests.query.traces import T0, agent_trace, store


@pytest.fixture
def world(engine: sa.Engine) -> Iterator[dict[str, object]]:
    """Projects ``alpha`` and ``beta``, each with a trace in session ``shared``; clients of each."""
    ids = {
        project: store(
            engine,
            agent_trace(
                name=f"{project} run",
                thought=f"secret plan of {project} with zanzibar",
                session_id="shared",
            ),
            project_id=project,
        )
        for project in ("alpha", "beta")
    }
    beta_only = store(
        engine, agent_trace(name="beta private", session_id="beta-only"), project_id="beta"
    )
    with Session(engine) as session, session.begin():
        keys = {project: create_key(session, project)[0] for project in ("alpha", "beta")}
        finding = add_finding(
            session,
            project_id="beta",
            trace_id=ids["beta"],
            check_name="citation_support",
            check_version="1",
            status="flagged",
            created_ns=T0,
        )
        attribution = Attribution(
            project_id="beta",
            trace_id=ids["beta"],
            finding_id=finding.id,
            method="m",
            created_ns=T0,
        )
        session.add(attribution)
        session.flush()
        attribution_id = attribution.id
    app = create_app(ServerSettings(auth=True, session_secret="s" * 32), engine=engine)
    with TestClient(app) as client:
        yield {
            "client": client,
            "ids": ids,
            "beta_only": beta_only,
            "attribution": attribution_id,
            "headers": {p: {"Authorization": f"Bearer {k}"} for p, k in keys.items()},
        }


def test_without_a_key_the_api_is_closed(world: dict[str, object]) -> None:
    client = world["client"]
    assert isinstance(client, TestClient)
    assert client.get("/api/v1/traces").status_code == 401
    assert client.get("/api/v1/search?q=zanzibar").status_code == 401


def test_another_projects_data_is_invisible(world: dict[str, object]) -> None:
    client, ids, headers = world["client"], world["ids"], world["headers"]
    assert isinstance(client, TestClient)
    assert isinstance(ids, dict)
    assert isinstance(headers, dict)
    alpha = headers["alpha"]
    beta_trace = ids["beta"]
    beta_root = beta_trace[:16]

    listing = client.get("/api/v1/traces", headers=alpha).json()
    assert [item["trace_id"] for item in listing["items"]] == [ids["alpha"]]
    assert listing["total"] == 1
    searched = client.get("/api/v1/traces?q=zanzibar", headers=alpha).json()
    assert [item["trace_id"] for item in searched["items"]] == [ids["alpha"]]
    steps = client.get("/api/v1/search?q=zanzibar", headers=alpha).json()["items"]
    assert {match["trace_id"] for match in steps} == {ids["alpha"]}
    assert client.get("/api/v1/traces?check=citation_support", headers=alpha).json()["items"] == []

    for path in (
        f"/api/v1/traces/{beta_trace}",
        f"/api/v1/traces/{beta_trace}/export",
        f"/api/v1/traces/{beta_trace}/export?format=otlp",
        f"/api/v1/traces/{beta_trace}/spans",
        f"/api/v1/spans/{beta_root}/field/input",
        f"/api/v1/spans/{beta_root}/field/attributes",
        f"/api/v1/attributions/{world['attribution']}",
        "/api/v1/sessions/beta-only",
    ):
        response = client.get(path, headers=alpha)
        assert response.status_code == 404, path
        assert "beta" not in response.text, path

    sessions = client.get("/api/v1/sessions", headers=alpha).json()
    assert sessions["items"][0]["trace_count"] == 1
    assert sessions["total"] == 1
    shared = client.get("/api/v1/sessions/shared", headers=alpha).json()
    assert [t["trace_id"] for t in shared["traces"]] == [ids["alpha"]]
    overview = client.get("/api/v1/findings/overview", headers=alpha).json()
    assert overview["items"] == []

    # The same requests with beta's key do see beta's data: the 404s above were isolation.
    beta = headers["beta"]
    assert client.get(f"/api/v1/traces/{beta_trace}", headers=beta).status_code == 200
    assert (
        client.get(f"/api/v1/attributions/{world['attribution']}", headers=beta).json()["method"]
        == "m"
    )
    assert client.get("/api/v1/sessions/beta-only", headers=beta).status_code == 200
    assert len(client.get("/api/v1/findings/overview", headers=beta).json()["items"]) == 1
