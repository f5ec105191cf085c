"""The trace page over HTTP (TestClient) on SQLite and PostgreSQL, with real recorded traces."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lucidtrace.ui import create_app
from tests.ui_trace.conftest import LONG_ATTRIBUTE, LONG_OUTPUT, LONG_THOUGHT, Recorded


@pytest.fixture
def client(recorded: Recorded, engine_for: Any) -> Iterator[TestClient]:
    """A client of the app on the recorded store."""
    with TestClient(create_app(engine=engine_for(recorded.url))) as test_client:
        yield test_client


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each script element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def parse(html: str) -> _Tags:
    """The tags of a page."""
    parser = _Tags()
    parser.feed(html)
    return parser


def assert_csp_clean(html: str) -> None:
    """No style attribute, no on* handler, no inline script but JSON data blocks."""
    page = parse(html)
    for tag, attrs in page.tags:
        assert "style" not in attrs, f"<{tag}> has a style attribute"
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"<{tag}> has event handler attributes {handlers}"
    for attrs, text in page.scripts:
        if attrs.get("src"):
            assert not text.strip()
        else:
            assert attrs.get("type") == "application/json", f"inline script: {text[:80]!r}"


def step_order(html: str) -> list[str]:
    """The step types of the audit trail, in page order."""
    return re.findall(r'<span class="step-type">([A-Z]+)</span>', html)


def section(html: str, element_id: str) -> str:
    """The HTML of the ``<li>`` / ``<article>`` with this id, up to its closing tag."""
    start = html.index(f'id="{element_id}"')
    tag = html.rfind("<", 0, start)
    name = html[tag + 1 : html.index(" ", tag)]
    end = html.index(f"</{name}>", start)
    if name == "li":  # steps nest articles; cut at the next step instead
        following = html.find('<li class="step ', start)
        end = following if following != -1 else html.index("</ol>", start)
    return html[tag:end]


def test_page_shows_header_steps_in_order_and_csp_clean_html(
    client: TestClient, recorded: Recorded
) -> None:
    response = client.get(f"/traces/{recorded.trace_id}")
    assert response.status_code == 200
    html = response.text
    assert "iceland-agent" in html
    assert recorded.trace_id in html
    assert 'href="/sessions/sess%2F42"' in html
    assert ">ada<" in html
    assert '<span class="tag">demo</span>' in html
    assert "badge-flagged" in html
    assert "The answer states a number no tool produced." in html  # verdict reason
    assert step_order(html) == [
        "THOUGHT",
        "ACTION",
        "OBSERVATION",
        "ACTION",
        "OBSERVATION",
        "RETRIEVAL",
        "ANSWER",
    ]
    assert "Iceland has 387,758 inhabitants (2024)." in html
    assert "calculator: syntax error at end of input" in html
    assert "tool error" in html  # the failed observation is marked
    assert "&#34;top_k&#34;: 3" in html  # arguments pretty-printed
    assert_csp_clean(html)


def test_documents_beside_their_retrieval_and_citations_link_to_them(
    client: TestClient, recorded: Recorded
) -> None:
    html = client.get(f"/traces/{recorded.trace_id}").text
    retrieval_id = re.search(r'<li class="step step-retrieval" id="([^"]+)"', html)
    assert retrieval_id is not None
    retrieval = section(html, retrieval_id.group(1))
    assert "Statistics Iceland: 387,758 inhabitants" in retrieval
    assert "Reykjavik is the capital." in retrieval
    card = re.search(
        r'<article class="source-card" id="(src-[^"]+)">\s*<header[^>]*>\s*'
        r'<span class="doc-rank" title="rank">#1</span>',
        retrieval,
    )
    assert card is not None
    answer = section(html, f"step-{recorded.answer[0]}-{recorded.answer[1]}")
    assert f'<a class="citation" href="#{card.group(1)}">[doc-3]</a>' in answer
    assert "[doc-99] not retrieved" in answer
    # the http(s) source is a safe link; the javascript: one is plain text
    assert 'href="https://example.org/iceland" rel="noopener noreferrer nofollow"' in html
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in retrieval


def test_findings_sit_beside_their_step_with_evidence_curve_and_heatmap(
    client: TestClient, recorded: Recorded
) -> None:
    html = client.get(f"/traces/{recorded.trace_id}").text
    answer = section(html, f"step-{recorded.answer[0]}-{recorded.answer[1]}")
    assert f'id="finding-{recorded.step_finding_id}"' in answer
    assert "About 400,000 people live there" in answer  # the claim
    assert "Iceland has 387,758 inhabitants (2024)." in answer  # the observation
    assert "expected <code>387758</code>, found <code>400000</code>" in answer
    assert "matcher" in answer  # another evidence key, as a table row
    assert "score 0.93 vs threshold 0.5" in answer
    thought = section(html, f"step-{recorded.thought[0]}-{recorded.thought[1]}")
    assert "finding-" not in thought

    panel = html[html.index('id="findings"') :]
    assert f'id="finding-{recorded.trace_finding_id}"' in panel
    assert "proxy: checked on SmolLM2-135M-Instruct, not the agent's model" in panel
    assert '<svg class="curve"' in panel
    assert re.search(r'<polyline class="curve-line" points="(\d+\.\d,\d+\.\d ?){5}"', panel)
    assert "fraction of reasoning kept" in panel
    assert '<span class="tok hm-p5" title="1"> Iceland</span>' in panel
    assert '<span class="tok hm-n2" title="-0.4"> live</span>' in panel
    assert '<span class="tok hm-none" title="\N{EN DASH}">?</span>' in panel
    assert '<span class="seg-name">thought 1</span>' in panel
    assert "Lanham et al. 2023" in panel


def test_long_fields_are_cut_and_the_full_value_loads(
    client: TestClient, recorded: Recorded
) -> None:
    html = client.get(f"/traces/{recorded.trace_id}").text
    assert "END-OF-THOUGHT" not in html
    thought = section(html, f"step-{recorded.thought[0]}-{recorded.thought[1]}")
    url = re.search(r'class="show-all" data-url="([^"]+)"', thought)
    assert url is not None
    full = client.get(url.group(1).replace("&amp;", "&"))
    assert full.status_code == 200
    assert full.json()["value"] == LONG_THOUGHT


def test_span_details_and_full_span_output(client: TestClient, recorded: Recorded) -> None:
    html = client.get(f"/traces/{recorded.trace_id}").text
    span_ids = re.findall(r'data-span-id="([0-9a-f]{16})" data-depth', html)
    details = [
        client.get(f"/api/v1/ui/traces/{recorded.trace_id}/spans/{span_id}").json()
        for span_id in span_ids
    ]
    formatting = next(detail for detail in details if detail["name"] == "format")
    assert formatting["output"]["cut"] is True
    assert "END-OF-OUTPUT" not in formatting["output"]["text"]
    full = client.get(
        f"/api/v1/ui/traces/{recorded.trace_id}/field",
        params={"of": "span", "span_id": formatting["id"], "name": "output"},
    ).json()
    assert full["value"] == LONG_OUTPUT
    prompt = next(a for a in formatting["attributes"] if a["key"] == "app.prompt")
    assert prompt["value"]["cut"] is True
    whole = client.get(
        f"/api/v1/ui/traces/{recorded.trace_id}/field",
        params={"of": "attribute", "span_id": formatting["id"], "name": "app.prompt"},
    ).json()
    assert whole["value"] == LONG_ATTRIBUTE
    agent = next(detail for detail in details if detail["kind"] == "AGENT")
    assert any(event["name"] == "lucidtrace.thought" for event in agent["events"])
    assert agent["attributes"]


def test_prefix_and_latest_resolve_and_unknown_is_a_404_page(
    client: TestClient, recorded: Recorded
) -> None:
    assert recorded.trace_id in client.get(f"/traces/{recorded.trace_id[:8]}").text
    assert recorded.trace_id in client.get("/traces/latest").text
    missing = client.get("/traces/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404
    assert "Trace not found" in missing.text
    assert_csp_clean(missing.text)
    assert client.get("/traces/not-hex<script>").status_code == 404
    bad_field = client.get(
        f"/api/v1/ui/traces/{recorded.trace_id}/field",
        params={"of": "span", "span_id": "x", "name": "attributes"},
    )
    assert bad_field.status_code == 400
    other = client.get(
        "/api/v1/ui/traces/0123456789abcdef0123456789abcdef/field",
        params={"of": "step", "span_id": recorded.thought[0], "name": "text"},
    )
    assert other.status_code == 404
