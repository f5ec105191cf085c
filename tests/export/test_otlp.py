"""``otlp_endpoint=``: lucidtrace spans also (or only) go to any OTLP/HTTP backend."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

import lucidtrace as lt
from lucidtrace.tracer._destinations import otlp_traces_url, parse_headers
from tests.export.contract_server import API_KEY, ContractServer

SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"


def _agent() -> None:
    with lt.span("agent", kind="agent", input={"question": "q", "api_key": SECRET}):
        lt.thought("thinking")
        with lt.tool_call("search", {"q": "x"}) as call:
            call.set_result("found")


def test_spans_reach_an_otlp_backend_only(
    server: ContractServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lt.configure(otlp_endpoint=server.url)
    _agent()
    assert lt.flush(timeout=20)
    names = sorted(name for name, _ in server.otlp_spans)
    assert names == ["agent", "execute_tool search"]
    assert not (tmp_path / "lucidtrace.db").exists()  # a named destination replaces the default


def test_spans_are_masked_before_they_reach_the_otlp_backend(server: ContractServer) -> None:
    lt.configure(otlp_endpoint=server.url)
    _agent()
    assert lt.flush(timeout=20)
    values = " ".join(v for _, attributes in server.otlp_spans for v in attributes.values())
    assert "REDACTED" in values
    assert SECRET not in values


def test_otlp_and_the_server_spool_at_once(server: ContractServer, spool_dir: Path) -> None:
    lt.configure(
        endpoint=server.url,
        api_key=API_KEY,
        spool_dir=spool_dir,
        otlp_endpoint=f"{server.url}/v1/traces",
        otlp_headers={"x-team": "agents"},
    )
    _agent()
    assert lt.flush(timeout=20)
    assert len(server.otlp_spans) == 2
    assert len(server.span_ids) == 2


def test_the_environment_names_the_otlp_endpoint(
    server: ContractServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUCIDTRACE_OTLP_ENDPOINT", server.url)
    monkeypatch.setenv("LUCIDTRACE_OTLP_HEADERS", "authorization=Bearer%20abc,x-a=1")
    lt.configure(f"sqlite:///{tmp_path / 'also.db'}")  # a named store: both destinations
    _agent()
    assert lt.flush(timeout=20)
    assert len(server.otlp_spans) == 2
    assert (tmp_path / "also.db").exists()


def test_a_missing_otlp_exporter_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with caplog.at_level(logging.ERROR, logger="lucidtrace"):
        lt.configure(otlp_endpoint="http://127.0.0.1:4318")
    assert "pip install 'lucidtrace[server]'" in caplog.text
    assert not lt.get_stats().enabled


def test_urls_and_headers() -> None:
    assert otlp_traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert otlp_traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert otlp_traces_url("https://c/custom/traces") == "https://c/custom/traces"
    assert parse_headers("a=1, b = x%3Dy ,") == {"a": "1", "b": "x=y"}
    with pytest.raises(ValueError, match="key=value"):
        parse_headers("novalue")
    with pytest.raises(ValueError, match="otlp_endpoint"):
        lt.configure(otlp_endpoint="collector:4318")
