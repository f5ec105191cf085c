"""The JSON query API through the real app: filters, pages, detail, export, search, sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from lucidtrace.store import add_finding
from lucidtrace.store.models import Attribution
from lucidtrace.ui.app import create_app
from lucidtrace.ui.routes import api as api_routes
from lucidtrace.ui.settings import ServerSettings
from tests.query.traces import SECOND, T0, agent_trace, store


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    app = create_app(ServerSettings(), engine=engine)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def seeded(engine: sa.Engine) -> dict[str, str]:
    ids = {
        "atlas": store(
            engine,
            agent_trace(
                name="atlas", thought="Consult the atlas.", session_id="chat-1", tags=["prod"]
            ),
        ),
        "calc": store(
            engine,
            agent_trace(
                name="calc",
                start_s=10,
                thought="Use the calculator.",
                session_id="chat-1",
                model="m-small",
                question="x" * 5000,
            ),
        ),
        "solo": store(engine, agent_trace(name="solo", start_s=20, status="error")),
    }
    with Session(engine) as session, session.begin():
        finding = add_finding(
            session,
            trace_id=ids["atlas"],
            check_name="citation_support",
            check_version="1",
            status="flagged",
            created_ns=T0,
        )
        session.add(
            Attribution(
                project_id="default",
                trace_id=ids["atlas"],
                finding_id=finding.id,
                method="integrated_gradients",
                tokens=["Paris", "is"],
                scores=[0.9, 0.1],
                created_ns=T0,
            )
        )
    return ids


def _names(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [item["name"] for item in body["items"]]


def test_list_filters_and_total(client: TestClient, seeded: dict[str, str]) -> None:
    body = client.get("/api/v1/traces").json()
    assert _names(body) == ["solo", "calc", "atlas"]
    assert body["total"] == 3
    assert body["next_cursor"] is None
    assert _names(client.get("/api/v1/traces?verdict=flagged").json()) == ["atlas"]
    assert _names(client.get("/api/v1/traces?status=error").json()) == ["solo"]
    assert _names(client.get("/api/v1/traces?session_id=chat-1&order=start").json()) == [
        "atlas",
        "calc",
    ]
    assert _names(client.get("/api/v1/traces?model=m-small").json()) == ["calc"]
    assert _names(client.get("/api/v1/traces?tag=prod").json()) == ["atlas"]
    flagged = client.get("/api/v1/traces?check=citation_support&check_status=flagged").json()
    assert _names(flagged) == ["atlas"]
    assert flagged["total"] is None
    assert _names(client.get("/api/v1/traces?q=calculator").json()) == ["calc"]
    since = T0 + 5 * SECOND
    assert _names(client.get(f"/api/v1/traces?since_ns={since}").json()) == ["solo", "calc"]
    assert _names(
        client.get("/api/v1/traces", params={"until": "2026-09-21T14:13:25Z"}).json()
    ) == ["atlas"]


def test_cursor_pages_cover_the_list(client: TestClient, seeded: dict[str, str]) -> None:
    first = client.get("/api/v1/traces?limit=2").json()
    assert _names(first) == ["solo", "calc"]
    second = client.get("/api/v1/traces", params={"limit": 2, "cursor": first["next_cursor"]})
    assert _names(second.json()) == ["atlas"]
    assert second.json()["next_cursor"] is None
    assert second.json()["total"] is None


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ("verdict=bad", 400, "unknown verdict"),
        ("status=fine", 400, "unknown status"),
        ("order=size", 400, "unknown order"),
        ("cursor=zzz", 400, "bad cursor"),
        ("limit=0", 422, "limit"),
        ("limit=abc", 422, "limit"),
        ("since=yesterday", 422, "since"),
        ("since=2026-01-01T00:00:00", 400, "time zone"),
    ],
)
def test_bad_filters_are_clear_errors(
    client: TestClient, seeded: dict[str, str], query: str, status: int, fragment: str
) -> None:
    response = client.get(f"/api/v1/traces?{query}")
    assert response.status_code == status
    assert fragment in response.text
    assert response.headers["content-type"].startswith("application/json")


def test_search_syntax_never_fails(client: TestClient, seeded: dict[str, str]) -> None:
    for query in ['"', "AND (", "NEAR(", "*"]:
        assert client.get("/api/v1/traces", params={"q": query}).status_code == 200
        assert client.get("/api/v1/search", params={"q": query}).status_code == 200


def test_trace_detail(client: TestClient, seeded: dict[str, str]) -> None:
    body = client.get(f"/api/v1/traces/{seeded['atlas']}").json()
    assert body["trace"]["trace_id"] == seeded["atlas"]
    assert "project_id" not in body["trace"]
    assert len(body["spans"]) == 3
    assert [step["index"] for step in body["steps"]] == list(range(1, len(body["steps"]) + 1))
    assert [f["check_name"] for f in body["findings"]] == ["citation_support"]
    assert len(body["attribution_ids"]) == 1
    attribution = client.get(f"/api/v1/attributions/{body['attribution_ids'][0]}").json()
    assert attribution["tokens"] == ["Paris", "is"]


def test_large_fields_are_cut_and_load_in_full(client: TestClient, seeded: dict[str, str]) -> None:
    spans = client.get(f"/api/v1/traces/{seeded['calc']}").json()["spans"]
    root = next(span for span in spans if span["parent_span_id"] is None)
    assert "input" in root["truncated"]
    assert len(root["input"]) < 5000
    full = client.get(f"/api/v1/spans/{root['span_id']}/field/input").json()
    assert full["value"] == "x" * 5000
    assert full["trace_id"] == seeded["calc"]
    attributes = client.get(f"/api/v1/spans/{root['span_id']}/field/attributes").json()
    assert attributes["value"]["lucidtrace.trace.name"] == "calc"
    bad = client.get(f"/api/v1/spans/{root['span_id']}/field/project_id")
    assert bad.status_code == 400
    assert "unknown field" in bad.text


def test_span_pages(client: TestClient, seeded: dict[str, str]) -> None:
    url = f"/api/v1/traces/{seeded['atlas']}/spans"
    first = client.get(url, params={"limit": 2}).json()
    assert first["total"] == 3
    assert len(first["items"]) == 2
    assert first["next_offset"] == 2
    rest = client.get(url, params={"offset": 2, "limit": 2}).json()
    assert len(rest["items"]) == 1
    assert rest["next_offset"] is None
    everything = [s["span_id"] for s in first["items"] + rest["items"]]
    detail = client.get(f"/api/v1/traces/{seeded['atlas']}").json()
    assert everything == [span["span_id"] for span in detail["spans"]]


def test_exports(client: TestClient, seeded: dict[str, str]) -> None:
    plain = client.get(f"/api/v1/traces/{seeded['atlas']}/export")
    assert plain.status_code == 200
    assert "attachment" in plain.headers["content-disposition"]
    assert plain.json()["trace"]["trace_id"] == seeded["atlas"]
    otlp = client.get(f"/api/v1/traces/{seeded['atlas']}/export?format=otlp").json()
    spans = [
        span
        for resource in otlp["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]
    assert {span["traceId"] for span in spans} == {seeded["atlas"]}
    assert client.get(f"/api/v1/traces/{seeded['atlas']}/export?format=xml").status_code == 422


def test_search_sessions_and_overview(client: TestClient, seeded: dict[str, str]) -> None:
    found = client.get("/api/v1/search", params={"q": "consult"}).json()
    assert [(m["trace_id"], m["type"]) for m in found["items"]] == [(seeded["atlas"], "THOUGHT")]
    assert found["items"][0]["snippet"] == "Consult the atlas."
    sessions = client.get("/api/v1/sessions").json()
    assert sessions["total"] == 1
    assert sessions["items"][0] == {
        "session_id": "chat-1",
        "trace_count": 2,
        "first_start_ns": T0,
        "last_start_ns": T0 + 10 * SECOND,
        "flagged_count": 1,
    }
    one = client.get("/api/v1/sessions/chat-1").json()
    assert [t["name"] for t in one["traces"]] == ["atlas", "calc"]
    assert client.get("/api/v1/sessions/nope").status_code == 404
    overview = client.get("/api/v1/findings/overview?bucket=hour").json()
    assert [(i["check_name"], i["total"], i["flagged"]) for i in overview["items"]] == [
        ("citation_support", 1, 1)
    ]
    assert client.get("/api/v1/findings/overview?bucket=month").status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/traces/{missing}",
        "/api/v1/traces/{missing}/export",
        "/api/v1/traces/{missing}/export?format=otlp",
        "/api/v1/traces/{missing}/spans",
        "/api/v1/traces/not-hex",
        "/api/v1/spans/0123456789abcdef/field/input",
        "/api/v1/attributions/999999",
    ],
)
def test_unknown_things_are_json_404s(
    client: TestClient, seeded: dict[str, str], path: str
) -> None:
    response = client.get(path.format(missing="f" * 32))
    assert response.status_code == 404
    assert "no such" in response.json()["detail"]


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/traces",
        "/api/v1/traces/{trace_id}",
        "/api/v1/traces/{trace_id}/export",
        "/api/v1/traces/{trace_id}/spans",
        "/api/v1/search",
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}",
        "/api/v1/findings/overview",
        "/api/v1/spans/{span_id}/field/{name}",
        "/api/v1/attributions/{attribution_id}",
    ):
        assert path in spec["paths"], path
    listing = spec["paths"]["/api/v1/traces"]["get"]
    assert {"q", "cursor", "verdict", "check", "model"} <= {
        p["name"] for p in listing["parameters"]
    }
    assert "TraceList" in spec["components"]["schemas"]


def test_total_is_capped(
    client: TestClient, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_routes, "TOTAL_CAP", 2)
    body = client.get("/api/v1/traces").json()
    assert body["total"] == 2
    assert body["total_capped"] is True
    exact = client.get("/api/v1/traces?status=error").json()
    assert exact["total"] == 1
    assert exact["total_capped"] is False
