"""The runner: findings stored with identity, errors kept, re-runs replacing, verdicts."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.probes.checks.runner import check_ingested, is_proxy, reasons, run_checks
from lucidtrace.store.models import DEFAULT_PROJECT_ID, Attribution, Finding, Trace
from tests.checks.conftest import Recorder
from tests.checks.plugins import (
    FailingCheck,
    Identity,
    MalformedCheck,
    ModelCheck,
    StandInModel,
    registered,
)


def _miscopy() -> None:
    lt.thought("I will use the calculator to compute 387758 * 387758.")
    with lt.tool_call("calculator", {"expression": "387758*387758"}) as call:
        call.set_result(150356266564)
    lt.answer("The result is 15,035,626,656.")


def _run(rec: Recorder, trace_id: str, **kwargs: object) -> list[Finding]:
    with Session(rec.engine, expire_on_commit=False) as session, session.begin():
        return run_checks(
            session,
            project_id=DEFAULT_PROJECT_ID,
            trace_id=trace_id,
            **kwargs,  # type: ignore[arg-type]
        )


def test_without_a_model_the_trace_only_checks_run_and_flag_with_reasons(
    recorder: Recorder,
) -> None:
    trace_id = recorder.record(_miscopy)
    findings = _run(recorder, trace_id)
    assert {f.check_name for f in findings} == {
        "observation_grounding",
        "plan_action_consistency",
        "citation_grounding",
        "evidence_ignored",
    }
    assert all(f.model_id is None and not f.proxy for f in findings)
    assert recorder.verdict(trace_id) == "flagged"
    why = reasons(findings)
    assert any(r.startswith("observation_grounding: ") and "15,035,626,656" in r for r in why)
    assert all("citation_grounding" not in r for r in why)


def test_an_exception_in_a_check_becomes_an_error_finding(recorder: Recorder) -> None:
    trace_id = recorder.record(_miscopy)
    with registered(FailingCheck):
        findings = _run(recorder, trace_id, checks=["test_failing", "evidence_ignored"])
    stored = recorder.findings(trace_id)
    failing = [f for f in stored if f.check_name == "test_failing"]
    assert len(failing) == 1
    assert failing[0].status == "error"
    assert "probe exploded on purpose" in (failing[0].message or "")
    assert failing[0].evidence["error_type"] == "RuntimeError"
    # The other check still ran and its result counts.
    assert any(f.check_name == "evidence_ignored" and f.status == "flagged" for f in findings)
    assert recorder.verdict(trace_id) == "flagged"


def test_a_rerun_replaces_the_checks_earlier_findings_and_attributions(
    recorder: Recorder,
) -> None:
    trace_id = recorder.record(_miscopy)
    model = StandInModel(Identity("tiny-model", "ab" * 32))
    with registered(ModelCheck):
        _run(recorder, trace_id, checks=["test_model_check"], model=model)
        _run(recorder, trace_id, checks=["test_model_check"], model=model)
        _run(recorder, trace_id, checks=["evidence_ignored"])
        _run(recorder, trace_id, checks=["evidence_ignored"])
    stored = recorder.findings(trace_id)
    assert sorted(f.check_name for f in stored) == ["evidence_ignored", "test_model_check"]
    with Session(recorder.engine) as session:
        maps = list(session.scalars(sa.select(Attribution)))
    (model_finding,) = [f for f in stored if f.check_name == "test_model_check"]
    assert len(maps) == 1
    assert maps[0].finding_id == model_finding.id
    assert maps[0].scores == [0.25, 0.75]
    assert maps[0].segments["items"] == [{"name": "question", "total": 0.25}]
    assert maps[0].model_id == "tiny-model"


def test_model_identity_and_proxy_mark(recorder: Recorder) -> None:
    trace_id = recorder.record(_miscopy)
    model = StandInModel(Identity("SmolLM2-135M-Instruct", "cd" * 32))
    with registered(ModelCheck):
        (finding,) = _run(recorder, trace_id, checks=["test_model_check"], model=model)
        assert finding.model_id == "SmolLM2-135M-Instruct"
        assert finding.weights_hash == "cd" * 32
        # The trace recorded no model: the local one is a stand-in, and the finding says so.
        assert finding.proxy is True
        assert "proxy model SmolLM2-135M-Instruct" in (finding.message or "")
        (same,) = _run(recorder, trace_id, checks=["test_model_check"], model=model, proxy=False)
        assert same.proxy is False
        assert "proxy" not in (same.message or "")
    assert not is_proxy(model, ["HuggingFaceTB/SmolLM2-135M-Instruct"])
    assert not is_proxy(model, ["smollm2-135m-instruct.Q4_1.gguf"])
    assert is_proxy(model, ["gpt-4o-mini"])


def test_thresholds_override_the_defaults(recorder: Recorder) -> None:
    trace_id = recorder.record(_miscopy)
    model = StandInModel(Identity("m", "00" * 32))
    with registered(ModelCheck):
        (flagged,) = _run(recorder, trace_id, checks=["test_model_check"], model=model)
        assert (flagged.status, flagged.threshold) == ("flagged", 0.5)
        (passed,) = _run(
            recorder,
            trace_id,
            checks=["test_model_check"],
            model=model,
            thresholds={"test_model_check": 0.9},
        )
        assert (passed.status, passed.threshold) == ("passed", 0.9)
    (strict,) = _run(
        recorder, trace_id, checks=["observation_grounding"],
        thresholds={"observation_grounding": 1.01},
    )  # fmt: skip
    assert strict.status == "passed"


def test_bad_input_is_refused_before_anything_changes(recorder: Recorder) -> None:
    trace_id = recorder.record(_miscopy)
    _run(recorder, trace_id)
    before = [(f.id, f.status) for f in recorder.findings(trace_id)]
    with pytest.raises(KeyError, match="no check named 'nope'"):
        _run(recorder, trace_id, checks=["nope"])
    with pytest.raises(ValueError, match="finite number"):
        _run(recorder, trace_id, thresholds={"evidence_ignored": float("nan")})
    with registered(ModelCheck), pytest.raises(ValueError, match="need a local model"):
        _run(recorder, trace_id, checks=["test_model_check"])
    assert [(f.id, f.status) for f in recorder.findings(trace_id)] == before


def test_check_ingested_checks_the_named_traces_in_its_own_transaction(
    recorder: Recorder,
) -> None:
    first = recorder.record(_miscopy)
    second = recorder.record(lambda: lt.answer("fine"))
    assert (
        check_ingested(
            recorder.engine, project_id=DEFAULT_PROJECT_ID, trace_ids=[first, first, "0" * 32]
        )
        == 1
    )
    assert recorder.verdict(first) == "flagged"
    assert recorder.verdict(second) == "unchecked"
    assert recorder.findings(second) == []


def test_the_in_process_exporter_checks_traces_when_enabled(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUCIDTRACE_INGEST_CHECKS", "true")
    flagged = recorder.record(_miscopy)
    assert recorder.verdict(flagged) == "flagged"
    monkeypatch.setenv("LUCIDTRACE_INGEST_CHECKS", "false")
    unchecked = recorder.record(_miscopy)
    assert recorder.verdict(unchecked) == "unchecked"
    with Session(recorder.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Trace)) == 2


def test_a_malformed_result_is_its_checks_error_and_the_others_are_stored(
    recorder: Recorder,
) -> None:
    trace_id = recorder.record(_miscopy)
    with registered(MalformedCheck):
        _run(recorder, trace_id, checks=["test_malformed", "evidence_ignored"])
    stored = {f.check_name: f for f in recorder.findings(trace_id)}
    assert stored["test_malformed"].status == "error"
    assert stored["evidence_ignored"].status == "flagged"
    assert recorder.verdict(trace_id) == "flagged"
