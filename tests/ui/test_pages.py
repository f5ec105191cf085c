"""The list pages, rendered from real traced runs on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from lucidtrace.ui import ServerSettings, create_app
from lucidtrace.ui.routes.pages import register_error_pages
from tests.ui.html_scan import row_names, scan
from tests.ui.seed import SeededTraces

ALL_NAMES = {"weather-agent", "math-agent", "search-agent", "poem-agent"}


def names(client: TestClient, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return row_names(response.text)


def test_home_redirects_to_the_trace_list(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in {302, 303, 307}
    assert response.headers["location"] == "/traces"


def test_empty_store_says_how_to_send_traces(client: TestClient) -> None:
    page = client.get("/traces").text
    assert "No traces yet" in page
    assert "/v1/traces" in page
    assert "lt.configure" in page


def test_list_shows_every_run_newest_first_with_verdicts(
    client: TestClient, demo: SeededTraces
) -> None:
    page = client.get("/traces").text
    assert row_names(page) == ["poem-agent", "search-agent", "math-agent", "weather-agent"]
    assert f'href="/traces/{demo["math-agent"]}"' in page
    assert 'title="flagged by: plan-action">flagged</span>' in page
    assert 'class="badge badge-clear" title="clear">clear</span>' in page
    assert page.count('class="badge badge-unchecked"') == 2
    assert 'class="badge status-error">error</span>' in page
    assert 'href="/sessions/sess-alpha"' in page
    assert "llama-3-8b" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("verdict=flagged", ["math-agent"]),
        ("verdict=clear", ["weather-agent"]),
        ("status=error", ["search-agent"]),
        ("tag=weather", ["weather-agent"]),
        ("session=sess-alpha", ["math-agent", "weather-agent"]),
        ("user=bob", ["search-agent"]),
        ("model=llama-3-8b", ["math-agent"]),
        ("check=plan-action", ["math-agent"]),
        ("check=observation-grounding&check_status=passed", ["math-agent", "weather-agent"]),
        ("q=lighthouses", ["poem-agent"]),
        ("q=Oslo", ["weather-agent"]),
        ("range=24h", ["poem-agent", "search-agent", "math-agent", "weather-agent"]),
        ("since=2000-01-01T00:00&until=2000-01-02T00:00", []),
        ("verdict=flagged&q=Oslo", []),
    ],
)
def test_filters_narrow_the_list(
    client: TestClient, demo: SeededTraces, query: str, expected: list[str]
) -> None:
    assert names(client, f"/traces?{query}") == expected


def test_filtered_empty_list_offers_to_clear_filters(
    client: TestClient, demo: SeededTraces
) -> None:
    page = client.get("/traces?tag=nope").text
    assert "No traces match these filters" in page
    assert "No traces yet" not in page


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["math-agent", "poem-agent", "search-agent", "weather-agent"]),
        ("-name", ["weather-agent", "search-agent", "poem-agent", "math-agent"]),
        ("start", ["weather-agent", "math-agent", "search-agent", "poem-agent"]),
        ("-verdict", ["math-agent"]),
        ("status", None),
        ("-steps", None),
        ("duration", None),
    ],
)
def test_sorting_by_column(
    client: TestClient, demo: SeededTraces, sort: str, expected: list[str] | None
) -> None:
    shown = names(client, f"/traces?sort={sort}")
    assert sorted(shown) == sorted(ALL_NAMES)
    if expected is not None:
        assert shown[: len(expected)] == expected


def test_sort_links_keep_the_filters_and_flip_direction(
    client: TestClient, demo: SeededTraces
) -> None:
    page = client.get("/traces?verdict=flagged&sort=name").text
    links = {
        html.unescape(href) for href in re.findall(r'<a class="sort[^"]*" href="([^"]+)"', page)
    }
    by_sort = {parse_qs(urlsplit(link).query)["sort"][0]: link for link in links}
    assert set(by_sort) == {"-name", "-start", "-duration", "-steps", "status", "verdict"}
    for link in links:
        assert parse_qs(urlsplit(link).query)["verdict"] == ["flagged"]


def test_pages_follow_the_cursor_and_keep_filters(client: TestClient, demo: SeededTraces) -> None:
    seen: list[str] = []
    url = "/traces?limit=1&session=sess-alpha"
    pages = 0
    while url:
        page = client.get(url).text
        seen += row_names(page)
        pages += 1
        found = re.search(r'<a class="button" rel="next" href="([^"]+)"', page)
        url = html.unescape(found.group(1)) if found else ""
        if url:
            assert parse_qs(urlsplit(url).query)["session"] == ["sess-alpha"]
        assert pages < 5
    assert seen == ["math-agent", "weather-agent"]
    assert pages == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("verdict=bogus", "verdict must be one of"),
        ("status=nope", "status must be one of"),
        ("sort=colour", "sort must be one of"),
        ("limit=0", "limit must be between"),
        ("since=yesterday", "since must be a date"),
        ("cursor=garbage", "cursor"),
    ],
)
def test_bad_parameters_get_a_clear_message(
    client: TestClient, demo: SeededTraces, query: str, message: str
) -> None:
    response = client.get(f"/traces?{query}")
    assert response.status_code == 400
    assert message in response.text
    assert row_names(response.text) == []
    assert 'id="trace-filters"' in response.text


def test_sessions_list_counts_traces_and_flags(client: TestClient, demo: SeededTraces) -> None:
    page = client.get("/sessions").text
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    by_session = {
        re.search(r'class="mono row-link"[^>]*>([^<]+)<', row).group(1): row  # type: ignore[union-attr]
        for row in rows
        if "row-link" in row
    }
    assert set(by_session) == {"sess-alpha", "sess-beta"}
    assert '<td class="num">2</td>' in by_session["sess-alpha"]
    assert "1 flagged" in by_session["sess-alpha"]
    assert '<td class="num">1</td>' in by_session["sess-beta"]
    assert "flagged" not in by_session["sess-beta"]
    assert names(client, "/sessions?q=beta") == []  # session rows use their own link class
    assert "sess-alpha" not in client.get("/sessions?q=beta").text


def test_session_page_shows_its_traces_in_order(client: TestClient, demo: SeededTraces) -> None:
    response = client.get("/sessions/sess-alpha")
    assert response.status_code == 200
    page = response.text
    assert page.index("weather-agent") < page.index("math-agent")
    assert "poem-agent" not in page
    assert "Will it rain in Oslo tomorrow?" in page
    assert "The product is 42." in page
    assert "Flagged by plan-action" in page
    assert f'href="/traces/{demo["weather-agent"]}"' in page


def test_unknown_session_is_a_404_page(client: TestClient, demo: SeededTraces) -> None:
    response = client.get("/sessions/no-such-session")
    assert response.status_code == 404
    assert "No traces in this session" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_findings_overview_shows_rates_and_latest_flags(
    client: TestClient, demo: SeededTraces
) -> None:
    page = client.get("/findings").text
    table = page[page.index('id="rates-table"') : page.index("</table>", page.index("rates-table"))]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    plan = next(row for row in rows if "plan-action" in row)
    grounding = next(row for row in rows if "observation-grounding" in row)
    assert re.findall(r'<td class="num">([^<]+)</td>', plan) == ["1", "1", "100.0%"]
    assert re.findall(r'<td class="num">([^<]+)</td>', grounding) == ["2", "0", "0.0%"]
    assert "<svg" in page
    assert page.count("<polyline") + page.count("<circle") >= 2
    data = json.loads(scan(page).json_blocks[0])
    assert {series["check"] for series in data["series"]} == {
        "plan-action",
        "observation-grounding",
    }
    latest = page[page.index('id="latest-table"') :]
    assert "the thought says it will search the web" in latest
    assert f'href="/traces/{demo["math-agent"]}"' in latest
    assert "observation-grounding" not in latest.split("</table>")[0]


def test_findings_filter_by_check_and_window(client: TestClient, demo: SeededTraces) -> None:
    page = client.get("/findings?check=plan-action&days=7").text
    table = page[page.index('id="rates-table"') : page.index("</table>", page.index("rates-table"))]
    assert "plan-action" in table
    assert "observation-grounding" not in table
    assert client.get("/findings?days=9999").status_code == 400


def test_findings_page_without_findings_says_so(client: TestClient) -> None:
    page = client.get("/findings").text
    assert "No findings in the last 30 days" in page
    assert "No flagged findings" in page


def test_unknown_page_is_html_for_browsers_and_json_for_clients(database_url: str) -> None:
    app = create_app(ServerSettings(database_url=database_url))
    register_error_pages(app)
    with TestClient(app) as test_client:
        browser = test_client.get("/no/such/page", headers={"accept": "text/html"})
        assert browser.status_code == 404
        assert "There is no page at this address." in browser.text
        api = test_client.get("/no/such/page", headers={"accept": "application/json"})
        assert api.status_code == 404
        assert api.json() == {"detail": "Not Found"}


def test_a_failing_page_answers_the_html_error_page(database_url: str) -> None:
    from fastapi import APIRouter, Depends

    from lucidtrace.ui.auth import page_principal
    from lucidtrace.ui.routes.pages import HTMLErrorRoute

    broken = APIRouter(route_class=HTMLErrorRoute)

    @broken.get("/broken", dependencies=[Depends(page_principal)])
    def broken_page() -> None:
        raise RuntimeError("secret internal detail")

    app = create_app(ServerSettings(database_url=database_url))
    app.include_router(broken)
    with TestClient(app) as test_client:
        response = test_client.get("/broken")
    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert "secret internal detail" not in response.text
    assert "content-security-policy" in response.headers
