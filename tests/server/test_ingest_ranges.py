"""Times beyond int64 refuse their span only; counts beyond any real count are not counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from lucidtrace.store.engine import create_engine
from lucidtrace.ui import ServerSettings, create_app

T0 = 1_700_000_000_000_000_000


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[TestClient, sa.Engine]]:
    engine = create_engine(database_url)
    app = create_app(ServerSettings(), engine=engine)
    with TestClient(app) as client:
        yield client, engine
    engine.dispose()


def test_an_otlp_time_beyond_int64_refuses_only_that_span(
    served: tuple[TestClient, sa.Engine],
) -> None:
    client, engine = served
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for index, start in enumerate((2**64 - 1, 2**63, T0)):
        span = spans.add()
        span.trace_id = bytes([index + 1]) * 16
        span.span_id = bytes([index + 1]) * 8
        span.name = f"span {index}"
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start
    response = client.post(
        "/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    assert "start_time_unix_nano (start_ns) 9223372036854775808 is beyond int64" in (
        answer.partial_success.error_message
    )
    assert "OverflowError" not in answer.partial_success.error_message
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM spans")).scalars().all() == ["span 2"]


def test_a_token_count_beyond_int64_is_kept_as_an_attribute_only(
    served: tuple[TestClient, sa.Engine],
) -> None:
    client, _ = served
    span = {
        "trace_id": "6" * 32,
        "span_id": "6" * 16,
        "parent_span_id": None,
        "name": "chat",
        "kind": "CLIENT",
        "start_ns": T0,
        "end_ns": T0 + 1,
        "status_code": "unset",
        "status_message": None,
        "attributes": {
            "gen_ai.usage.input_tokens": 10**30,
            "gen_ai.usage.output_tokens": 7,
            "gen_ai.request.model": "m",
        },
        "events": [],
        "resource": {},
        "scope": None,
    }
    response = client.post("/api/v1/spans", json={"format": "lucidtrace.spans.v1", "spans": [span]})
    assert response.json()["accepted"] == 1, response.text
    trace = client.get(f"/api/v1/traces/{'6' * 32}").json()
    assert trace["trace"]["input_tokens"] == 0
    assert trace["trace"]["output_tokens"] == 7
    attributes = client.get(f"/api/v1/spans/{'6' * 16}/field/attributes").json()["value"]
    assert attributes["gen_ai.usage.input_tokens"] == 10**30
    assert any("not counted" in problem for problem in attributes["lucidtrace.ingest.problems"])
