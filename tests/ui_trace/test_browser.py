"""The trace page in headless Chromium: tree, span details, show all, heatmap, 10k spans."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lucidtrace.ui.routes.trace_pages import SPAN_CHUNK, SPAN_FIRST
from tests.e2e.conftest import GuardedPage, open_guarded_page
from tests.ui_trace.conftest import make_recorded, record_big_trace

pytestmark = pytest.mark.browser

ROWS = "document.querySelectorAll('.span-row[data-span-id]').length"


@pytest.fixture
def guarded(browser: Any) -> Iterator[Any]:
    """Open guarded pages (dialogs, foreign requests, console errors recorded); closed after."""
    contexts: list[Any] = []

    def open_page(base_url: str) -> GuardedPage:
        context, guarded_page = open_guarded_page(browser, base_url)
        contexts.append(context)
        return guarded_page

    yield open_page
    for context in contexts:
        context.close()


def test_span_tree_details_show_all_and_heatmap(sqlite_url: str, serve: Any, guarded: Any) -> None:
    recorded = make_recorded(sqlite_url)
    server = serve(sqlite_url)
    opened = guarded(server.url)
    page = opened.page
    page.goto(f"/traces/{recorded.trace_id}")

    rows = page.locator(".span-row[data-span-id]")
    assert rows.count() == 5
    root = rows.first
    root.locator("button.toggle").click()
    assert page.locator(".span-row[data-span-id]:visible").count() == 1
    root.locator("button.toggle").click()
    assert page.locator(".span-row[data-span-id]:visible").count() == 5

    # bars are sized by classes (no style attribute): a child bar is narrower than the root's
    root_bar = root.locator(".span-bar").bounding_box()
    child_bar = rows.nth(1).locator(".span-bar").bounding_box()
    assert root_bar is not None
    assert child_bar is not None
    assert child_bar["width"] < root_bar["width"]

    page.locator(".span-row", has_text="format").click()
    detail = page.locator("#span-detail")
    detail.get_by_text("Output", exact=True).wait_for()
    output = detail.locator(".lt-field", has_text="Output").locator("pre.lt-text")
    assert not output.inner_text().endswith("END-OF-OUTPUT")
    detail.locator(".lt-field", has_text="Output").locator("button.show-all").click()
    page.wait_for_function(
        "() => document.querySelector('#span-detail pre.lt-text').textContent"
        ".endsWith('END-OF-OUTPUT')"
    )
    assert output.inner_text().endswith("END-OF-OUTPUT")
    detail.get_by_text("Attributes", exact=False).click()
    prompt = detail.locator("table.kv tr", has_text="app.prompt")
    assert not prompt.locator("pre").inner_text().endswith("END-OF-ATTRIBUTE")
    prompt.locator("button.show-all").click()
    prompt.locator("pre.lt-full").wait_for()
    assert prompt.locator("pre").inner_text().endswith("END-OF-ATTRIBUTE")

    thought = page.locator(f"#step-{recorded.thought[0]}-{recorded.thought[1]}")
    assert "END-OF-THOUGHT" not in thought.locator("pre.lt-text").inner_text()
    thought.locator("button.show-all").click()
    page.wait_for_function(
        f"() => document.querySelector('#step-{recorded.thought[0]}-{recorded.thought[1]} "
        "pre.lt-text').textContent.endsWith('END-OF-THOUGHT')"
    )

    hot = page.locator(".heatmap .tok.hm-p5").first
    assert hot.is_visible()
    assert hot.inner_text() == " Iceland"
    colour = hot.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
    assert page.locator("svg.curve polyline.curve-line").is_visible()
    assert opened.guard.console_errors == []
    opened.guard.assert_nothing_ran(page)


@pytest.mark.slow
def test_ten_thousand_span_trace_loads_and_loads_more(
    sqlite_url: str, serve: Any, guarded: Any
) -> None:
    trace_id = record_big_trace(sqlite_url)
    server = serve(sqlite_url)
    opened = guarded(server.url)
    page = opened.page
    page.goto(f"/traces/{trace_id}")
    rows = page.locator(".span-row[data-span-id]")
    assert rows.count() == SPAN_FIRST
    page.locator("button.load-more").click()
    page.wait_for_function(f"() => {ROWS} >= {SPAN_FIRST + SPAN_CHUNK}")
    # scrolling the tree to its end loads the next chunk by itself
    page.locator(".span-tree").evaluate("e => { e.scrollTop = e.scrollHeight; }")
    page.wait_for_function(f"() => {ROWS} >= {SPAN_FIRST + 2 * SPAN_CHUNK}")
    assert "of 10,001 shown" in page.locator(".span-count").inner_text()
    # rows loaded by script work like the server-rendered ones
    span_id = rows.last.get_attribute("data-span-id")
    loaded = page.locator(f'.span-row[data-span-id="{span_id}"]')
    name = loaded.locator(".span-name").text_content()
    loaded.click()
    title = page.locator("#span-detail .span-detail-title")
    title.wait_for()
    assert title.inner_text() == name
    assert opened.guard.console_errors == []
    opened.guard.assert_nothing_ran(page)
