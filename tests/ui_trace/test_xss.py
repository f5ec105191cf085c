"""Hostile trace content in every field the trace page renders: nothing runs, nothing loads.

Uses the shared corpus of ``tests/e2e/xss_payloads.py``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.store import add_finding, create_engine
from lucidtrace.store.models import Attribution, Step, Trace
from lucidtrace.ui import create_app
from tests.e2e.conftest import open_guarded_page
from tests.e2e.xss_payloads import EVIL_HOST, PAYLOADS, SENTINEL, URL_PAYLOADS, payload_for
from tests.ui_trace.test_trace_page import assert_csp_clean, parse

INJECTED = """() => Array.from(document.querySelectorAll(
  'script:not([src]):not([type="application/json"]), iframe, object, embed, base, style, '
  + 'meta[http-equiv], img:not([src^="/static/"]), [onerror], [onload], [onmouseover], '
  + '[onfocus], [ontoggle], [style], a[href^="javascript"], form[action^="javascript"]'
)).map(e => e.outerHTML.slice(0, 80))"""
"""Elements a payload would have created had it been parsed as HTML."""

EXTRA_SPANS = 520  # more than one chunk, so some hostile rows are built by the page's script


def record_hostile(url: str) -> str:
    """A trace whose every recorded field holds a payload; returns its id."""
    lt.configure(database_url=url)
    try:

        @lt.traced(kind="agent", name=payload_for(0))
        def run(question: str) -> str:
            lt.thought(payload_for(1) + " filler" * 800 + payload_for(2))
            with lt.tool_call(payload_for(3), {payload_for(4): payload_for(5)}) as call:
                call.set_result(payload_for(6))
            try:
                with lt.tool_call(payload_for(7), payload_for(8)):
                    raise RuntimeError(payload_for(9))
            except RuntimeError:
                pass
            lt.retrieval(
                payload_for(10),
                documents=[
                    {
                        "id": payload_for(11 + i),
                        "content": payload,
                        "score": 0.5,
                        "source": source,
                        "metadata": {payload: payload},
                    }
                    for i, (payload, source) in enumerate(zip(PAYLOADS, URL_PAYLOADS, strict=False))
                ],
            )
            with lt.span(
                payload_for(20), kind="llm", attributes={payload_for(21): payload_for(22)}
            ) as inner:
                inner.set_input(payload_for(23))
                inner.set_output(payload_for(24) + " x" * 3000 + payload_for(25))
            for i in range(EXTRA_SPANS):
                with lt.span(payload_for(i), kind="tool"):
                    pass
            return lt.answer(payload_for(26), cites=[payload_for(11), payload_for(27)])

        with lt.trace_attributes(
            session_id=payload_for(28),
            user_id=payload_for(29),
            tags=list(PAYLOADS[30:34]),
            metadata={p: p for p in PAYLOADS[34:38]},
        ):
            run(payload_for(38))
        assert lt.flush(timeout=60)
    finally:
        lt.shutdown()
    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            trace_id = session.scalars(sa.select(Trace.trace_id)).one()
            answer = session.scalars(sa.select(Step).where(Step.type == "ANSWER")).one()
            for index, step in enumerate((answer.span_id, None)):
                finding = add_finding(
                    session,
                    trace_id=trace_id,
                    check_name=payload_for(39 + index)[:100],
                    check_version=payload_for(41)[:32],
                    status="flagged",
                    score=1.0,
                    threshold=0.5,
                    message=payload_for(42),
                    evidence={
                        "claim": payload_for(43),
                        "observation": payload_for(44),
                        "observation_step": {"span_id": payload_for(45), "seq": 0},
                        "expected": payload_for(46),
                        "found": payload_for(47),
                        "paper": payload_for(48),
                        "curve": {
                            "x": [0, 1],
                            "y": [0.1, 0.9],
                            "x_label": payload_for(49),
                            "y_label": payload_for(50),
                        },
                        "segments": {payload_for(51): 0.5},
                        payload_for(52): payload_for(53),
                    },
                    model_id=payload_for(54)[:200],
                    proxy=True,
                    step_span_id=step,
                    step_seq=answer.seq if step else None,
                )
                session.add(
                    Attribution(
                        project_id=finding.project_id,
                        trace_id=trace_id,
                        finding_id=finding.id,
                        method=payload_for(55)[:100],
                        model_id=payload_for(56)[:200],
                        target=payload_for(57),
                        tokens=list(PAYLOADS),
                        scores=[(i % 7 - 3) / 3 for i in range(len(PAYLOADS))],
                        segments={payload_for(58): 1.0},
                        created_ns=time.time_ns(),
                    )
                )
            return str(trace_id)
    finally:
        engine.dispose()


def test_hostile_fields_render_escaped(sqlite_url: str, engine_for: Any) -> None:
    trace_id = record_hostile(sqlite_url)
    client = TestClient(create_app(engine=engine_for(sqlite_url)))
    html = client.get(f"/traces/{trace_id}").text
    assert_csp_clean(html)
    assert "<script>window.__xss" not in html
    for tag, attrs in parse(html).tags:
        assert not any(
            EVIL_HOST in (value or "") for name, value in attrs.items() if name != "href"
        )
        href = attrs.get("href") or ""
        if tag == "a" and not href.startswith(("#", "/traces", "/sessions", "/findings")):
            # only http(s) sources become links, and those cannot reach the opener or referrer
            assert href.startswith(("https://", "http://")), href
            assert attrs.get("rel") == "noopener noreferrer nofollow"
    assert "&lt;script&gt;window.__xss=1;alert(1)&lt;/script&gt;" in html  # shown as text
    for payload in PAYLOADS[:5]:
        missing = client.get(f"/traces/{quote(payload, safe='')}")
        assert missing.status_code == 404
        assert_csp_clean(missing.text)


@pytest.mark.browser
def test_hostile_trace_runs_nothing_in_chromium(sqlite_url: str, serve: Any, browser: Any) -> None:
    trace_id = record_hostile(sqlite_url)
    server = serve(sqlite_url)
    context, guarded = open_guarded_page(browser, server.url)
    page = guarded.page

    page.goto(f"/traces/{trace_id}")
    page.locator("button.load-more").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.span-row[data-span-id]').length > 500"
    )
    rows = page.locator(".span-row[data-span-id]")
    for index in [*range(12), rows.count() - 1]:
        rows.nth(index).click()
        page.locator("#span-detail .span-detail-title").wait_for()
        for details in page.locator("#span-detail details").all():
            details.evaluate("e => { e.open = true; }")
        for button in page.locator("#span-detail button.show-all").all():
            button.click()
        page.wait_for_function("() => !document.querySelector('#span-detail .lt-cut')")
    for button in page.locator("button.show-all").all():
        if button.is_visible():
            button.click()
    page.wait_for_function("() => !document.querySelector('button.show-all:disabled')")
    for link in page.locator("a.citation").all():
        link.click()
    page.mouse.move(5, 5)
    for element in page.locator(".tok, .finding, .source-card, .kv-value").all()[:200]:
        for event in ("mouseover", "focus", "click"):
            element.dispatch_event(event)

    for payload in PAYLOADS[:8]:
        page.goto(f"/traces/{quote(payload, safe='')}")
    page.goto(f"/traces/{trace_id}")

    assert page.locator(".heatmap .tok").count() >= len(PAYLOADS)
    assert page.evaluate(f"() => typeof window.{SENTINEL}") == "undefined"
    guarded.guard.assert_nothing_ran(page)
    # The CSP would stop an injected handler from running; the page must not even create one.
    blocked = [e for e in guarded.guard.console_errors if "Content Security Policy" in e]
    assert blocked == []
    page.goto(f"/traces/{trace_id}")
    page.locator("button.load-more").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.span-row[data-span-id]').length > 500"
    )
    rows.nth(0).click()
    page.locator("#span-detail table.kv").wait_for(state="attached")
    assert page.evaluate(INJECTED) == []
    context.close()
