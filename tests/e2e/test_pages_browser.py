"""The web UI in headless Chromium: browse, filter, open a trace, sign in, hostile content."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.orm import Session

from lucidtrace.ui import ServerSettings
from tests.e2e.conftest import GuardedPage, open_guarded_page
from tests.e2e.xss_payloads import PAYLOADS
from tests.server.conftest import LiveServer, running_server
from tests.ui.seed import seed_demo, seed_hostile

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@contextmanager
def browse(browser: Any, server: LiveServer) -> Iterator[GuardedPage]:
    context, guarded = open_guarded_page(browser, server.url)
    try:
        yield guarded
    finally:
        context.close()


def row_names(page: Any) -> list[str]:
    return [name.strip() for name in page.locator("#trace-table a.row-link").all_inner_texts()]


def test_browse_filter_and_open_a_trace(browser: Any, database_url: str) -> None:
    seeded = seed_demo(database_url)
    with (
        running_server(ServerSettings(database_url=database_url)) as server,
        browse(browser, server) as guarded,
    ):
        page = guarded.page
        page.goto("/")
        assert page.url.endswith("/traces")
        assert row_names(page) == ["poem-agent", "search-agent", "math-agent", "weather-agent"]
        flagged = page.locator("#trace-table tr", has_text="math-agent").locator(".badge-flagged")
        assert flagged.get_attribute("title") == "flagged by: plan-action"

        # Choosing a verdict submits the filter form by itself.
        with page.expect_navigation():
            page.select_option("select[name=verdict]", "flagged")
        assert "verdict=flagged" in page.url
        assert "q=" not in page.url  # empty fields are left out of the address
        assert row_names(page) == ["math-agent"]

        # Full-text search over what the agents said, combined with no other filter.
        with page.expect_navigation():
            page.click("text=Clear filters")
        page.wait_for_load_state("load")
        page.press("body", "/")
        assert page.evaluate("document.activeElement.id") == "search-box"
        page.keyboard.type("Oslo")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert row_names(page) == ["weather-agent"]

        # Sorting by name through the column header, then back.
        page.goto("/traces")
        with page.expect_navigation():
            page.click("#trace-table th >> text=Name")
        assert row_names(page) == ["math-agent", "poem-agent", "search-agent", "weather-agent"]

        # A click on the row opens the trace: its steps and its sources are there.
        with page.expect_navigation():
            page.locator("#trace-table tr", has_text="weather-agent").locator("td").nth(3).click()
        assert page.url.endswith(f"/traces/{seeded['weather-agent']}")
        body = page.locator("body")
        body.get_by_text("I should check the forecast for Oslo.").first.wait_for()
        assert "Oslo has rainy autumns with frequent drizzle." in body.inner_text()
        assert "get_weather" in body.inner_text()
        guarded.guard.assert_nothing_ran(page)
        assert guarded.guard.console_errors == []


def test_sessions_and_findings(browser: Any, database_url: str) -> None:
    seed_demo(database_url)
    with (
        running_server(ServerSettings(database_url=database_url)) as server,
        browse(browser, server) as guarded,
    ):
        page = guarded.page
        page.goto("/traces")
        with page.expect_navigation():
            page.click("nav >> text=Sessions")
        with page.expect_navigation():
            page.click("text=sess-alpha")
        turns = page.locator(".turn .turn-name").all_inner_texts()
        assert turns == ["weather-agent", "math-agent"]
        assert "Flagged by plan-action" in page.locator("body").inner_text()

        with page.expect_navigation():
            page.click("nav >> text=Findings")
        assert page.locator("#flag-chart").is_visible()
        series = page.locator("#flag-chart g.series[data-check='plan-action']")
        assert series.is_visible()
        legend = page.locator(".legend-item[data-check='plan-action']")
        assert legend.get_attribute("title") == "1 of 1 findings flagged in this window"
        legend.click()
        assert legend.get_attribute("aria-pressed") == "false"
        assert not series.is_visible()
        legend.click()
        assert series.is_visible()
        rate = page.locator("#rates-table tr", has_text="plan-action").locator("td").last
        assert rate.inner_text() == "100.0%"
        with page.expect_navigation():
            page.locator("#latest-table a", has_text="math-agent").click()
        assert "/traces/" in page.url
        guarded.guard.assert_nothing_ran(page)
        assert guarded.guard.console_errors == []


def test_sign_in_and_out(browser: Any, database_url: str) -> None:
    from lucidtrace.store import create_engine
    from lucidtrace.ui.keys import create_key

    seed_demo(database_url)
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            key, _ = create_key(session, "default", name="browser test")
            session.commit()
    finally:
        engine.dispose()
    settings = ServerSettings(database_url=database_url, auth=True, session_secret="s" * 32)
    with running_server(settings) as server, browse(browser, server) as guarded:
        page = guarded.page
        page.goto("/sessions")
        assert "/login" in page.url
        page.fill("input[name=api_key]", "lt_wrong_key")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "/login" in page.url or page.locator("[role=alert]").count() == 1
        assert row_names(page) == []

        page.goto("/traces")
        page.fill("input[name=api_key]", key)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url.endswith("/traces")
        assert len(row_names(page)) == 4
        with page.expect_navigation():
            page.click("nav >> text=Sessions")
        assert page.locator("#session-table").is_visible()

        with page.expect_navigation():
            page.click("text=Sign out")
        page.goto("/traces")
        assert "/login" in page.url
        assert row_names(page) == []
        guarded.guard.assert_nothing_ran(page)


@pytest.mark.slow
def test_hostile_content_never_runs(browser: Any, database_url: str) -> None:
    ids = seed_hostile(database_url, PAYLOADS)
    with (
        running_server(ServerSettings(database_url=database_url)) as server,
        browse(browser, server) as guarded,
    ):
        page = guarded.page
        paths = [
            "/traces",
            "/traces?verdict=flagged&sort=name",
            "/sessions",
            "/findings",
            *(f"/sessions/{quote(payload, safe='')}" for payload in PAYLOADS),
            *(f"/traces/{trace_id}" for trace_id in ids),
        ]
        for path in paths:
            response = page.goto(path)
            assert response is not None
            assert response.status < 500, path
            # Open every disclosure and hover every row, so nothing lazily shown escapes.
            for details in page.locator("details").all()[:20]:
                details.evaluate("node => { node.open = true; }")
            for row in page.locator("tr").all()[:10]:
                row.hover()
            guarded.guard.assert_nothing_ran(page)
        page.goto("/traces")
        names = page.locator("#trace-table a.row-link").all_inner_texts()
        assert "<script>window.__xss=1;alert(1)</script>" in names
        assert len(names) == len(PAYLOADS)
