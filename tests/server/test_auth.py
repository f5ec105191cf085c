"""API keys, sign-in, CSRF and project isolation with auth on."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from sqlalchemy.orm import Session

from lucidtrace.store.models import ApiKey
from lucidtrace.ui import ServerSettings, keys
from lucidtrace.ui.auth import SESSION_COOKIE, Principal, api_principal, safe_next
from tests.server.conftest import LiveServer
from tests.server.spans import agent_spans, count_spans

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def server_settings(database_url: str) -> ServerSettings:
    return ServerSettings(database_url=database_url, auth=True)


@dataclass(frozen=True)
class Keys:
    alpha: str
    beta: str
    ingest_only: str
    alpha_prefix: str


@pytest.fixture
def api_keys(live_server: LiveServer) -> Keys:
    with Session(live_server.engine) as session, session.begin():
        alpha, row = keys.create_key(session, "alpha", name="alpha ci")
        beta, _ = keys.create_key(session, "beta")
        ingest_only, _ = keys.create_key(session, "alpha", scopes=("ingest",))
        prefix = row.prefix
    return Keys(alpha, beta, ingest_only, prefix)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def send(server: LiveServer, key: str | None, *, traces: int = 1, **extra: str) -> httpx.Response:
    headers = {**PROTOBUF, **extra}
    if key is not None:
        headers["X-API-Key"] = key
    body = encode_spans(agent_spans(traces=traces)).SerializeToString()
    return httpx.post(f"{server.url}/v1/traces", content=body, headers=headers)


def test_keys_are_stored_as_hashes_only(live_server: LiveServer, api_keys: Keys) -> None:
    assert re.fullmatch(r"lt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", api_keys.alpha)
    with live_server.engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(sa.select(ApiKey)).mappings()]
    assert len(rows) == 3
    dumped = repr(rows)
    for key in (api_keys.alpha, api_keys.beta, api_keys.ingest_only):
        assert key not in dumped
        assert key.split("_", 2)[2] not in dumped
    stored = {row["key_hash"] for row in rows}
    assert hashlib.sha256(api_keys.alpha.encode()).hexdigest() in stored


def test_keys_are_compared_in_constant_time(
    live_server: LiveServer, api_keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    with Session(live_server.engine) as session:
        assert keys.lookup_key(session, api_keys.alpha) is not None
        wrong = api_keys.alpha[:-4] + "AAAA"
        assert keys.lookup_key(session, wrong) is None
    assert len(calls) == 2
    assert all(len(a) == len(b) == 64 for a, b in calls)  # hashes, never the keys


def test_ingest_needs_a_live_key_with_the_ingest_scope(
    live_server: LiveServer, api_keys: Keys
) -> None:
    missing = send(live_server, None)
    assert missing.status_code == 401
    assert "API key is required" in missing.json()["detail"]
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    unknown = send(live_server, "lt_000000000000_" + "A" * 43)
    assert (unknown.status_code, unknown.json()["detail"]) == (401, "unknown API key")
    assert send(live_server, "garbage").status_code == 401
    assert count_spans(live_server.engine) == 0
    assert send(live_server, api_keys.ingest_only).status_code == 200
    with Session(live_server.engine) as session, session.begin():
        keys.revoke_key(session, api_keys.alpha_prefix)
    revoked = send(live_server, api_keys.alpha)
    assert (revoked.status_code, revoked.json()["detail"]) == (
        401,
        "this API key has been revoked",
    )
    assert count_spans(live_server.engine) == 4


def test_the_sdk_exporter_sends_with_a_bearer_key(live_server: LiveServer, api_keys: Keys) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces", headers=bearer(api_keys.beta), timeout=30
    )
    try:
        assert exporter.export(agent_spans(traces=2)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert count_spans(live_server.engine, "beta") == 8
    with live_server.engine.connect() as conn:
        used = conn.execute(sa.select(ApiKey.last_used_ns).where(ApiKey.project_id == "beta"))
        assert used.scalar_one() is not None


def test_a_key_writes_and_reads_only_its_own_project(
    live_server: LiveServer, api_keys: Keys
) -> None:
    request = encode_spans(agent_spans(traces=1, name="alpha-run"))
    resource = request.resource_spans[0].resource
    for name in ("lucidtrace.project", "project_id", "project.id"):
        attribute = resource.attributes.add()
        attribute.key = name
        attribute.value.string_value = "beta"
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=request.SerializeToString(),
        headers={**PROTOBUF, **bearer(api_keys.alpha), "X-Project": "beta"},
    )
    assert response.status_code == 200
    assert count_spans(live_server.engine, "alpha") == 4
    assert count_spans(live_server.engine, "beta") == 0
    assert send(live_server, api_keys.beta).status_code == 200
    trace_alpha = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    url = f"{live_server.url}/api/v1/traces"
    seen_by_alpha = httpx.get(url, headers=bearer(api_keys.alpha))
    seen_by_beta = httpx.get(url, headers=bearer(api_keys.beta))
    assert seen_by_alpha.status_code == seen_by_beta.status_code == 200
    assert trace_alpha in seen_by_alpha.text
    assert trace_alpha not in seen_by_beta.text
    by_id = httpx.get(f"{url}/{trace_alpha}", headers=bearer(api_keys.beta))
    assert by_id.status_code == 404
    assert httpx.get(f"{url}/{trace_alpha}", headers=bearer(api_keys.alpha)).status_code == 200


def test_an_ingest_only_key_cannot_read(live_server: LiveServer, api_keys: Keys) -> None:
    response = httpx.get(f"{live_server.url}/api/v1/traces", headers=bearer(api_keys.ingest_only))
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


# ----------------------------------------------------------------------------- sign-in


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as client:
        yield client


def login_form(client: httpx.Client, next_path: str = "/traces") -> str:
    page = client.get("/login", params={"next": next_path})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match is not None
    return match.group(1)


def sign_in(client: httpx.Client, key: str, next_path: str = "/traces") -> httpx.Response:
    token = login_form(client, next_path)
    return client.post("/login", data={"api_key": key, "csrf_token": token, "next": next_path})


def test_signing_in_sets_a_hardened_session_cookie(browser: httpx.Client, api_keys: Keys) -> None:
    assert browser.get("/traces").status_code == 303
    response = sign_in(browser, api_keys.alpha)
    assert response.status_code == 303
    assert response.headers["location"] == "/traces"
    cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith(SESSION_COOKIE)
    )
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "max-age=" in lowered
    assert "secure" not in lowered  # plain http here; https requests get Secure
    assert api_keys.alpha not in cookie
    page = browser.get("/traces")
    assert page.status_code == 200
    assert "alpha" in page.text  # the project shown in the page header


def test_a_wrong_key_or_a_missing_form_token_does_not_sign_in(
    browser: httpx.Client, api_keys: Keys
) -> None:
    wrong = sign_in(browser, "lt_000000000000_" + "B" * 43)
    assert wrong.status_code == 401
    assert "unknown API key" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    login_form(browser)
    forged = browser.post("/login", data={"api_key": api_keys.alpha, "csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert browser.get("/traces").status_code == 303


def test_unsafe_requests_with_a_session_need_the_csrf_token(
    browser: httpx.Client, api_keys: Keys
) -> None:
    assert sign_in(browser, api_keys.alpha).status_code == 303
    refused = browser.post("/logout")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert browser.post("/logout", data={"csrf_token": "f" * 64}).status_code == 403
    assert browser.get("/traces").status_code == 200  # still signed in
    page = browser.get("/traces").text
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert match is not None, "the page's sign-out form carries the token"
    done = browser.post("/logout", data={"csrf_token": match.group(1)})
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    assert browser.get("/traces").status_code == 303


def test_revoking_a_key_ends_its_sessions(
    live_server: LiveServer, browser: httpx.Client, api_keys: Keys
) -> None:
    assert sign_in(browser, api_keys.alpha).status_code == 303
    assert browser.get("/traces").status_code == 200
    assert browser.get("/api/v1/traces").status_code == 200
    with Session(live_server.engine) as session, session.begin():
        keys.revoke_key(session, api_keys.alpha_prefix)
    assert browser.get("/traces").status_code == 303
    assert browser.get("/api/v1/traces").status_code == 401


def test_a_forged_or_expired_cookie_is_not_a_session(
    live_server: LiveServer, browser: httpx.Client, api_keys: Keys
) -> None:
    assert sign_in(browser, api_keys.alpha).status_code == 303
    token = browser.cookies[SESSION_COOKIE]
    body, _, mac = token.partition(".")
    browser.cookies.set(SESSION_COOKIE, f"{body}.{'A' * len(mac)}")
    assert browser.get("/traces").status_code == 303
    browser.cookies.set(SESSION_COOKIE, "e30.nothing")
    assert browser.get("/traces").status_code == 303


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/traces?q=1", "/traces?q=1"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/x\r\nLocation: https://evil.example", "/"),
        ("", "/"),
        ("/login?next=//evil", "/"),
    ],
)
def test_next_is_always_a_path_on_this_site(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_sign_in_never_redirects_off_site(browser: httpx.Client, api_keys: Keys) -> None:
    response = sign_in(browser, api_keys.alpha, next_path="//evil.example/steal")
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_pages_send_the_browser_to_sign_in_with_the_page_to_return_to(
    browser: httpx.Client,
) -> None:
    response = browser.get("/sessions", params={"q": "a b"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/sessions%3Fq%3Da")


def test_with_auth_off_sign_in_is_not_needed(sqlite_url: str) -> None:
    from tests.server.conftest import running_server

    with running_server(ServerSettings(database_url=sqlite_url)) as server:
        response = httpx.get(f"{server.url}/login", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/")
        assert httpx.get(f"{server.url}/traces").status_code == 200


def test_api_writes_with_a_session_need_the_csrf_header_but_keys_do_not(
    live_server: LiveServer, browser: httpx.Client, api_keys: Keys
) -> None:
    extra = APIRouter()

    @extra.post("/api/v1/echo-project")
    def echo(principal: Annotated[Principal, Depends(api_principal)]) -> dict[str, str]:
        return {"project": principal.project_id, "via": principal.via}

    live_server.app.include_router(extra)
    assert sign_in(browser, api_keys.alpha).status_code == 303
    refused = browser.post("/api/v1/echo-project")
    assert refused.status_code == 403
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', browser.get("/traces").text)
    assert token is not None
    done = browser.post("/api/v1/echo-project", headers={"X-CSRF-Token": token.group(1)})
    assert done.json() == {"project": "alpha", "via": "session"}
    by_key = httpx.post(f"{live_server.url}/api/v1/echo-project", headers=bearer(api_keys.beta))
    assert by_key.json() == {"project": "beta", "via": "key"}
