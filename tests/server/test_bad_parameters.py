"""Out-of-range numbers, bad cursors and NUL characters get a clear 4xx, never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lucidtrace.store.engine import create_engine
from lucidtrace.ui import ServerSettings, create_app

T0 = 1_700_000_000_000_000_000
TRACE = f"{1:032x}"
SPAN = f"{1:016x}"
BIG = 10**30


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    engine = create_engine(database_url)
    app = create_app(ServerSettings(), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        spans = [
            {
                "trace_id": f"{i + 1:032x}",
                "span_id": f"{i + 1:016x}",
                "parent_span_id": None,
                "name": f"n{i}",
                "kind": "INTERNAL",
                "start_ns": T0 + i,
                "end_ns": T0 + i + 1000,
                "status_code": "unset",
                "status_message": None,
                "attributes": {"session.id": "s1", "input.value": "hello world"},
                "events": [],
                "resource": {},
                "scope": None,
            }
            for i in range(3)
        ]
        response = client.post(
            "/api/v1/spans", json={"format": "lucidtrace.spans.v1", "spans": spans}
        )
        assert response.json()["accepted"] == 3
        yield client
    engine.dispose()


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


OUT_OF_RANGE = [
    f"/api/v1/traces?offset={BIG}",
    f"/api/v1/traces?offset={2**63}",
    f"/api/v1/traces?since_ns={BIG}",
    f"/api/v1/traces?until_ns=-{BIG}",
    f"/api/v1/search?q=hello&offset={BIG}",
    f"/api/v1/sessions?offset={BIG}",
    f"/api/v1/findings/overview?since_ns={BIG}",
    f"/api/v1/attributions/{BIG}",
    f"/api/v1/traces/{TRACE}/spans?offset={BIG}",
    f"/api/v1/ui/traces/{TRACE}/tree?offset={BIG}",
    f"/api/v1/ui/traces/{TRACE}/field?of=step&span_id={SPAN}&name=text&seq={BIG}",
    f"/traces/{TRACE}?steps={BIG}",
]


def test_integers_beyond_int64_are_refused(client: TestClient) -> None:
    for path in OUT_OF_RANGE:
        response = client.get(path)
        assert response.status_code == 422, (path, response.text)
        assert "9223372036854775807" in response.text or "-9223372036854775808" in response.text


BAD_TIMES_AND_CURSORS = [
    ("/api/v1/traces?since=0001-01-01T00:00:00Z", "outside the range of times"),
    ("/api/v1/traces?until=9999-12-31T23:59:59Z", "outside the range of times"),
    ("/api/v1/traces?cursor=" + cursor(["-start", BIG, "x"]), "bad cursor"),
    ("/api/v1/traces?cursor=" + cursor(["-start", "abc", "x"]), "bad cursor"),
    ("/api/v1/traces?cursor=" + cursor(["-start", True, "x"]), "bad cursor"),
    ("/api/v1/traces?order=name&cursor=" + cursor(["name", 5, "x"]), "bad cursor"),
    ("/api/v1/traces?order=duration&cursor=" + cursor(["duration", "zz", "x"]), "bad cursor"),
    ("/api/v1/sessions/s1?cursor=" + cursor(["start", BIG, "x"]), "bad cursor"),
    ("/traces?since=9999-12-31", "between the years 1678 and 2262"),
    ("/traces?since=0001-01-01", "between the years 1678 and 2262"),
    ("/traces?cursor=" + cursor(["-start", BIG, "x"]), "bad cursor"),
]


def test_times_out_of_range_and_mistyped_cursors_are_refused(client: TestClient) -> None:
    for path, says in BAD_TIMES_AND_CURSORS:
        response = client.get(path)
        assert response.status_code == 400, (path, response.text)
        assert says in response.text, path


def test_a_real_cursor_still_pages(client: TestClient) -> None:
    for order in ("-start", "name", "-duration", "status", "verdict", "steps"):
        first = client.get(f"/api/v1/traces?limit=2&order={order}").json()
        assert first["next_cursor"] is not None
        rest = client.get(
            f"/api/v1/traces?limit=2&order={order}&cursor={first['next_cursor']}"
        ).json()
        seen = [item["trace_id"] for item in first["items"] + rest["items"]]
        assert sorted(seen) == [f"{i + 1:032x}" for i in range(3)], order


NUL_PATHS = [
    "/api/v1/traces?name=%00",
    "/api/v1/traces?session_id=a%00",
    "/api/v1/traces?tag=%00",
    "/api/v1/traces?model=%00",
    "/api/v1/traces?check=%00",
    "/api/v1/traces?verdict=%00",
    "/api/v1/search?q=hello%00",
    "/api/v1/sessions?q=%00",
    "/api/v1/sessions/%00",
    f"/api/v1/ui/traces/{TRACE}/spans/%00",
    "/api/v1/ui/traces/%00/tree",
    "/traces?q=%00",
    "/traces/%00",
    "/sessions/%00",
    "/findings?check=%00",
]


def test_nul_in_the_url_is_a_clear_400(client: TestClient) -> None:
    for path in NUL_PATHS:
        response = client.get(path)
        assert response.status_code == 400, (path, response.text)
        assert "NUL characters" in response.json()["detail"]
        assert "Content-Security-Policy" in response.headers


def test_nul_in_span_text_is_stored_the_same_on_every_database(
    client: TestClient, database_url: str
) -> None:
    span = {
        "trace_id": "9" * 32,
        "span_id": "9" * 16,
        "parent_span_id": None,
        "name": "a\x00b",
        "kind": "INTERNAL",
        "start_ns": T0,
        "end_ns": T0 + 1,
        "status_code": "error",
        "status_message": "bad\x00",
        "attributes": {"k\x00": "v\x00", "input.value": "in\x00put"},
        "events": [],
        "resource": {},
        "scope": None,
    }
    response = client.post("/api/v1/spans", json={"format": "lucidtrace.spans.v1", "spans": [span]})
    assert response.json()["accepted"] == 1, response.text
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT name, status_message, input FROM spans WHERE span_id = :s"),
                {"s": "9" * 16},
            ).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("a\ufffdb", "bad\ufffd", "in\ufffdput")
    detail = client.get(f"/api/v1/spans/{'9' * 16}/field/attributes").json()
    assert detail["value"]["k\ufffd"] == "v\ufffd"
