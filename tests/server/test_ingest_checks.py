"""Trace-only checks run on traces as the server ingests them, when asked to."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from lucidtrace.store.models import Finding, Trace
from lucidtrace.ui import ServerSettings
from tests.server.conftest import LiveServer, running_server
from tests.server.spans import agent_spans


def send(server: LiveServer) -> set[str]:
    """Send two agent runs; returns their trace ids."""
    spans = agent_spans(traces=2)
    body = encode_spans(spans).SerializeToString()
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    return {format(s.get_span_context().trace_id, "032x") for s in spans}


def findings(server: LiveServer) -> list[tuple[str, str]]:
    with server.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(Finding.trace_id, Finding.status))]


@pytest.mark.integration
def test_checks_run_on_ingest_when_enabled(database_url: str) -> None:
    pytest.importorskip("lucidtrace.probes.checks.runner")
    settings = ServerSettings(database_url=database_url, ingest_checks=True)
    with running_server(settings) as server:
        sent = send(server)
        found = findings(server)
        assert {trace_id for trace_id, _ in found} == sent  # every trace was checked
        with server.engine.connect() as conn:
            verdicts = set(conn.execute(sa.select(Trace.verdict)).scalars())
        assert verdicts <= {"clear", "flagged", "unchecked"}


def test_no_checks_run_on_ingest_by_default(live_server: LiveServer) -> None:
    send(live_server)
    assert findings(live_server) == []
