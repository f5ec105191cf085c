"""A 10k-span trace: the page carries only its first chunk, and the continuation pages through."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from lucidtrace.store.models import Trace
from lucidtrace.ui import create_app
from lucidtrace.ui.routes.trace_pages import SPAN_FIRST, STEP_PAGE
from tests.ui_trace.conftest import record_big_trace

pytestmark = pytest.mark.slow

SPANS = 1 + 100 + 100 * 99
DASH = "\N{EN DASH}"


def test_big_trace_renders_first_chunk_and_continuation_covers_every_span(
    database_url: str, engine_for: Any
) -> None:
    trace_id = record_big_trace(database_url)
    engine = engine_for(database_url)
    with Session(engine) as session:
        stored = session.get(Trace, ("default", trace_id))
        assert stored is not None
        assert stored.span_count == SPANS
        steps = stored.step_count
    assert steps > 2 * STEP_PAGE
    client = TestClient(create_app(engine=engine))

    response = client.get(f"/traces/{trace_id}")
    assert response.status_code == 200
    html = response.text
    first = re.findall(r'class="span-row" role="treeitem"[^>]* data-span-id="([0-9a-f]+)"', html)
    assert len(first) == SPAN_FIRST
    assert len(html) < 2_000_000  # the first chunk, not the whole trace
    assert f"{SPAN_FIRST:,} of {SPANS:,} shown" in html
    depths = [int(d) for d in re.findall(r'data-depth="(\d+)"', html)]
    assert depths[:3] == [0, 1, 2]  # tree order: root, first chain, its first child
    next_url = re.search(r'class="load-more" data-next="([^"]+)"', html)
    assert next_url is not None

    seen = list(first)
    url: str | None = next_url.group(1).replace("&amp;", "&")
    while url:
        chunk = client.get(url).json()
        assert chunk["total"] == SPANS
        assert chunk["offset"] == len(seen)
        seen.extend(row["id"] for row in chunk["rows"])
        url = chunk["next"]
    assert len(seen) == SPANS
    assert len(set(seen)) == SPANS

    # the audit trail pages too
    assert html.count('<li class="step ') == STEP_PAGE
    assert f"steps 1{DASH}{STEP_PAGE} of {steps:,}" in html
    following = re.search(r'<a class="trail-next" href="([^"]+)"', html)
    assert following is not None
    second = client.get(following.group(1).replace("&amp;", "&")).text
    assert f"steps {STEP_PAGE + 1}{DASH}{2 * STEP_PAGE} of {steps:,}" in second
    assert second.count('<li class="step ') == STEP_PAGE
    assert f'<ol class="steps" start="{STEP_PAGE + 1}">' in second


def test_span_tree_rows_are_listed_under_their_parent(database_url: str, engine_for: Any) -> None:
    trace_id = record_big_trace(database_url, chains=3, tools=4)
    engine = engine_for(database_url)
    client = TestClient(create_app(engine=engine))
    rows = client.get(f"/api/v1/ui/traces/{trace_id}/tree?offset=0&limit=100").json()["rows"]
    names = [(row["depth"], row["name"]) for row in rows]
    assert names[0] == (0, "big-agent")
    assert names[1] == (1, "chain 0")
    chain_at = [names.index((1, f"chain {i}")) for i in range(3)]
    for i, start in enumerate(chain_at):
        below = names[start + 1 : chain_at[i + 1] if i + 1 < 3 else None]
        assert all(depth == 2 for depth, _ in below)
        assert len(below) == 5 + 4  # 5 tool calls and 4 plain tool spans
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Trace)) == 1
