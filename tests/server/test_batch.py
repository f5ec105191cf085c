"""The batch endpoint (lucidtrace's own format): per-item status, same rows, refusals."""

from __future__ import annotations

import gzip
import json
import sqlite3
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from lucidtrace.store import DEFAULT_PROJECT_ID, record_from_readable_span
from lucidtrace.store import ingest as ingest_module
from lucidtrace.store.wire import BATCH_PATH, batch_to_wire
from tests.server.conftest import LiveServer
from tests.server.spans import agent_spans, count_spans, project_rows
from tests.server.test_otlp import IN_PROCESS, store_in_process

JSON = {"Content-Type": "application/json"}


def batch_body(spans: Any) -> bytes:
    return json.dumps(batch_to_wire([record_from_readable_span(s) for s in spans])).encode()


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_batch_is_stored_with_the_rows_of_the_in_process_path(
    live_server: LiveServer, gzipped: bool
) -> None:
    spans = agent_spans(traces=2)
    body, headers = batch_body(spans), dict(JSON)
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    response = httpx.post(f"{live_server.url}{BATCH_PATH}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (8, 0)
    assert [item["span_id"] for item in answer["items"]] == [
        format(s.get_span_context().span_id, "016x") for s in spans
    ]
    assert {item["status"] for item in answer["items"]} == {"stored"}
    store_in_process(live_server, spans)
    assert project_rows(live_server.engine, DEFAULT_PROJECT_ID) == project_rows(
        live_server.engine, IN_PROCESS
    )


def test_resending_a_batch_changes_nothing(live_server: LiveServer) -> None:
    body = batch_body(agent_spans(traces=2))
    url = f"{live_server.url}{BATCH_PATH}"
    assert httpx.post(url, content=body, headers=JSON).json()["accepted"] == 8
    first = project_rows(live_server.engine, DEFAULT_PROJECT_ID)
    again = httpx.post(url, content=body, headers=JSON).json()
    assert (again["accepted"], again["rejected"]) == (8, 0)
    assert project_rows(live_server.engine, DEFAULT_PROJECT_ID) == first


@pytest.fixture
def refusing_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database refuses any transaction holding a span named ``poison`` (a bad value)."""
    real = ingest_module.ingest_spans

    def ingest(engine: Any, records: Any, **kwargs: Any) -> Any:
        records = list(records)
        if any(r.name == "poison" for r in records):
            raise sa.exc.DataError("INSERT ...", {}, sqlite3.DataError("value refused"))
        return real(engine, records, **kwargs)

    monkeypatch.setattr(ingest_module, "ingest_spans", ingest)


def poisoned(spans: Any) -> list[Any]:
    records = [record_from_readable_span(s) for s in spans]
    bad = records[1]
    records[1] = type(bad)(**{**vars(bad), "name": "poison"})
    return records


@pytest.mark.usefixtures("refusing_store")
def test_a_span_the_store_refuses_is_reported_and_costs_only_itself(
    live_server: LiveServer,
) -> None:
    records = poisoned(agent_spans(traces=2))
    response = httpx.post(
        f"{live_server.url}{BATCH_PATH}",
        content=json.dumps(batch_to_wire(records)),
        headers=JSON,
    )
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (7, 1)
    [refused] = [item for item in answer["items"] if item["status"] == "rejected"]
    assert refused["span_id"] == records[1].span_id
    assert "value refused" in refused["error"]
    assert "INSERT" not in refused["error"]
    assert count_spans(live_server.engine) == 7


@pytest.mark.usefixtures("refusing_store")
def test_otlp_reports_a_refused_span_as_partial_success(live_server: LiveServer) -> None:
    request = encode_spans(agent_spans(traces=2))
    request.resource_spans[0].scope_spans[0].spans[2].name = "poison"
    response = httpx.post(
        f"{live_server.url}/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 1
    assert "value refused" in partial.error_message
    assert count_spans(live_server.engine) == 7


def test_an_unavailable_store_answers_503_so_the_client_retries(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(ingest_module, "ingest_spans", locked)
    response = httpx.post(
        f"{live_server.url}{BATCH_PATH}", content=batch_body(agent_spans(traces=1)), headers=JSON
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "database is locked" in response.json()["detail"]
    monkeypatch.undo()
    assert count_spans(live_server.engine) == 0
