"""Pages never carry inline code, inline styles or unsafe links, whatever a trace holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from lucidtrace.ui import ServerSettings, create_app
from tests.e2e.xss_payloads import PAYLOADS
from tests.ui.html_scan import scan
from tests.ui.seed import SeededTraces, seed_hostile

LIST_PAGES = ("/traces", "/sessions", "/sessions/sess-alpha", "/findings")


def assert_clean(page: str, where: str) -> None:
    found = scan(page)
    assert found.problems == [], f"{where}: {found.problems[:5]}"
    for block in found.json_blocks:
        json.loads(block)


@pytest.mark.parametrize("path", [*LIST_PAGES, "/traces?verdict=bogus", "/sessions/none"])
def test_every_page_sends_a_strict_csp_and_has_no_inline_code(
    client: TestClient, demo: SeededTraces, path: str
) -> None:
    response = client.get(path)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert_clean(response.text, path)


def test_static_assets_are_served(client: TestClient) -> None:
    for name in ("app.css", "app.js", "favicon.svg"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert "content-security-policy" in response.headers


@pytest.fixture
def hostile(database_url: str) -> Iterator[tuple[TestClient, list[str]]]:
    ids = seed_hostile(database_url, PAYLOADS)
    app = create_app(ServerSettings(database_url=database_url))
    with TestClient(app) as test_client:
        yield test_client, ids


@pytest.mark.slow
def test_payloads_in_every_field_render_inert(hostile: tuple[TestClient, list[str]]) -> None:
    client, ids = hostile
    assert len(ids) == len(PAYLOADS)
    pages = [
        "/traces",
        "/traces?verdict=flagged&sort=name",
        "/sessions",
        "/findings",
        *(f"/sessions/{quote(payload, safe='')}" for payload in PAYLOADS),
        *(f"/traces?q={quote(payload, safe='')}" for payload in PAYLOADS[:5]),
        *(f"/traces?tag={quote(payload, safe='')}" for payload in PAYLOADS[:5]),
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code in {200, 400}, (path, response.status_code)
        assert_clean(response.text, path)
        assert "<script>window.__xss" not in response.text
    overview = client.get("/traces").text
    # Every payload shows up, as text.
    assert overview.count('class="row-link"') == len(PAYLOADS)
    assert "&lt;script&gt;window.__xss=1;alert(1)&lt;/script&gt;" in overview
    session_page = client.get(f"/sessions/{quote(PAYLOADS[0], safe='')}")
    assert session_page.status_code == 200
    assert "&lt;script&gt;window.__xss=1;alert(1)&lt;/script&gt;" in session_page.text
