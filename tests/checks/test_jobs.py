"""The check_jobs queue and the worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.probes.checks.jobs import claim_job, enqueue_checks, run_worker
from lucidtrace.store.errors import TraceNotFoundError
from lucidtrace.store.models import DEFAULT_PROJECT_ID, CheckJob, Finding
from tests.checks.conftest import Recorder
from tests.checks.plugins import Identity, ModelCheck, StandInModel, registered

MODEL = StandInModel(Identity("tiny-model", "ef" * 32))


def _agent() -> None:
    lt.thought("I will use the calculator to compute 12 * 12.")
    with lt.tool_call("calculator", {"expression": "12*12"}) as call:
        call.set_result(144)
    lt.answer("12 * 12 = 144.")


def _enqueue(rec: Recorder, trace_id: str, checks: list[str], **kwargs: object) -> int:
    with Session(rec.engine) as session, session.begin():
        job = enqueue_checks(
            session,
            project_id=DEFAULT_PROJECT_ID,
            trace_id=trace_id,
            checks=checks,
            model="tiny-model",
            **kwargs,  # type: ignore[arg-type]
        )
        return job.id


def _job(rec: Recorder, job_id: int) -> CheckJob:
    with Session(rec.engine, expire_on_commit=False) as session:
        job = session.get(CheckJob, job_id)
        assert job is not None
        return job


def test_a_worker_runs_a_queued_job_and_stores_its_findings(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)
    loaded: list[str | None] = []

    def loader(name: str | None) -> StandInModel:
        loaded.append(name)
        return MODEL

    with registered(ModelCheck):
        job_id = _enqueue(recorder, trace_id, ["test_model_check", "evidence_ignored"])
        handled = run_worker(recorder.engine, worker_id="w1", model_loader=loader, once=True)
    assert handled == 1
    assert loaded == ["tiny-model"]
    job = _job(recorder, job_id)
    assert (job.status, job.attempts, job.locked_by) == ("done", 1, "w1")
    findings = {f.check_name: f for f in recorder.findings(trace_id)}
    assert findings["test_model_check"].model_id == "tiny-model"
    assert findings["test_model_check"].status == "flagged"
    assert findings["evidence_ignored"].status == "passed"
    assert recorder.verdict(trace_id) == "flagged"


def test_a_job_of_trace_only_checks_loads_no_model(recorder: Recorder) -> None:
    # The question gives the numbers the calculator is called with (tool arguments alone
    # ground nothing), and the calculator's result grounds 144.
    trace_id = recorder.record(_agent, question="What is 12 * 12?")
    _enqueue(recorder, trace_id, ["observation_grounding"])

    def loader(name: str | None) -> StandInModel:
        raise AssertionError("no model should be loaded")

    assert run_worker(recorder.engine, worker_id="w", model_loader=loader, once=True) == 1
    (finding,) = recorder.findings(trace_id)
    assert finding.status == "passed"


def test_enqueue_refuses_unknown_checks_and_traces(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)
    with pytest.raises(KeyError, match="no check named"):
        _enqueue(recorder, trace_id, ["nope"])
    with pytest.raises(TraceNotFoundError):
        _enqueue(recorder, "f" * 32, ["evidence_ignored"])
    with Session(recorder.engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CheckJob)) == 0


def test_failures_are_retried_then_recorded_as_error_findings(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)
    attempts: list[str | None] = []

    def broken(name: str | None) -> StandInModel:
        attempts.append(name)
        raise OSError("weights file is truncated")

    outcomes: list[str] = []
    with registered(ModelCheck):
        job_id = _enqueue(recorder, trace_id, ["test_model_check"], max_attempts=3)
        handled = run_worker(
            recorder.engine,
            worker_id="w",
            model_loader=broken,
            once=True,
            backoff_s=0.0,
            on_job=lambda _job, outcome: outcomes.append(outcome),
        )
    assert handled == 3
    assert outcomes == ["retry", "retry", "failed"]
    assert len(attempts) == 3
    job = _job(recorder, job_id)
    assert (job.status, job.attempts) == ("failed", 3)
    assert "weights file is truncated" in (job.error or "")
    (finding,) = recorder.findings(trace_id)
    assert finding.check_name == "test_model_check"
    assert finding.status == "error"
    assert "after 3 attempt(s)" in (finding.message or "")
    assert "weights file is truncated" in (finding.message or "")
    assert recorder.verdict(trace_id) == "unchecked"


def test_a_retry_waits_for_its_backoff(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)

    def broken(name: str | None) -> StandInModel:
        raise OSError("not yet")

    with registered(ModelCheck):
        job_id = _enqueue(recorder, trace_id, ["test_model_check"])
        handled = run_worker(
            recorder.engine, worker_id="w", model_loader=broken, once=True, backoff_s=3600
        )
    assert handled == 1  # the retry is not due for an hour: the worker found nothing more
    job = _job(recorder, job_id)
    assert (job.status, job.attempts) == ("queued", 1)
    assert recorder.findings(trace_id) == []


def test_a_job_held_by_a_dead_worker_is_reclaimed_after_the_lease(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)
    with registered(ModelCheck):
        job_id = _enqueue(recorder, trace_id, ["test_model_check"])
        with Session(recorder.engine) as session, session.begin():
            claimed = claim_job(session, worker_id="dead-worker")
            assert claimed is not None
            assert claimed.id == job_id
        with Session(recorder.engine) as session, session.begin():
            # Within the lease nobody else may take it.
            assert claim_job(session, worker_id="w2", lease_s=3600) is None
        time.sleep(0.05)
        handled = run_worker(
            recorder.engine, worker_id="w2", model_loader=lambda _: MODEL, once=True, lease_s=0.01
        )
    assert handled == 1
    job = _job(recorder, job_id)
    assert (job.status, job.locked_by, job.attempts) == ("done", "w2", 2)
    assert [f.check_name for f in recorder.findings(trace_id)] == ["test_model_check"]


def test_a_dead_workers_last_attempt_fails_with_an_error_finding(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)
    with registered(ModelCheck):
        job_id = _enqueue(recorder, trace_id, ["test_model_check"], max_attempts=1)
        with Session(recorder.engine) as session, session.begin():
            assert claim_job(session, worker_id="dead-worker") is not None
        time.sleep(0.05)
        with Session(recorder.engine) as session, session.begin():
            assert claim_job(session, worker_id="w2", lease_s=0.01) is None
    job = _job(recorder, job_id)
    assert job.status == "failed"
    (finding,) = recorder.findings(trace_id)
    assert finding.status == "error"
    assert "dead-worker" in (finding.message or "")


@pytest.mark.postgres
def test_postgres_workers_in_threads_never_run_the_same_job(postgres_url: str) -> None:
    rec = Recorder(postgres_url)
    try:
        trace_ids = [rec.record(_agent) for _ in range(3)]
        ModelCheck.runs.clear()
        ModelCheck.delay = 0.02
        handled: dict[str, int] = {}

        def work(name: str) -> None:
            handled[name] = run_worker(
                rec.engine, worker_id=name, model_loader=lambda _: MODEL, once=True
            )

        with registered(ModelCheck):
            job_ids = [_enqueue(rec, trace_ids[i % 3], ["test_model_check"]) for i in range(24)]
            threads = [
                threading.Thread(target=work, args=(f"worker-{i}",), name=f"worker-{i}")
                for i in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        assert sum(handled.values()) == len(job_ids)
        assert all(count > 0 for count in handled.values()), handled
        assert len(ModelCheck.runs) == len(job_ids)
        with Session(rec.engine) as session:
            jobs = list(session.scalars(sa.select(CheckJob).order_by(CheckJob.id)))
            assert [job.status for job in jobs] == ["done"] * len(job_ids)
            assert all(job.attempts == 1 for job in jobs)
            assert {job.locked_by for job in jobs} == {"worker-0", "worker-1"}
            # Each trace ends with one finding of the check: re-runs replaced, none doubled.
            counts = session.execute(
                sa.select(Finding.trace_id, sa.func.count()).group_by(Finding.trace_id)
            ).all()
            assert sorted(count for _, count in counts) == [1, 1, 1]
    finally:
        ModelCheck.delay = 0.0
        rec.engine.dispose()


def test_an_interrupted_worker_gives_its_job_back(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)

    def interrupted(name: str | None) -> StandInModel:
        raise KeyboardInterrupt

    with registered(ModelCheck):
        job_id = _enqueue(recorder, trace_id, ["test_model_check"])
        with pytest.raises(KeyboardInterrupt):
            run_worker(recorder.engine, worker_id="w", model_loader=interrupted, once=True)
        job = _job(recorder, job_id)
        assert (job.status, job.attempts, job.locked_by) == ("queued", 0, None)
        # The next worker takes it at once.
        assert run_worker(recorder.engine, worker_id="w2", model_loader=lambda _: MODEL, once=True)
    assert _job(recorder, job_id).status == "done"


def test_a_running_worker_keeps_its_job_past_the_lease(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)
    ModelCheck.delay = 2.5
    try:
        with registered(ModelCheck):
            job_id = _enqueue(recorder, trace_id, ["test_model_check"])
            worker = threading.Thread(
                target=run_worker,
                args=(recorder.engine,),
                kwargs={"worker_id": "busy", "model_loader": lambda _: MODEL, "once": True,
                        "lease_s": 1.0},
            )  # fmt: skip
            worker.start()
            while _job(recorder, job_id).status != "running":
                time.sleep(0.02)
            time.sleep(1.5)  # past the lease: only the heartbeat keeps the job with its worker
            with Session(recorder.engine) as session, session.begin():
                assert claim_job(session, worker_id="thief", lease_s=1.0) is None
            worker.join(timeout=60)
    finally:
        ModelCheck.delay = 0.0
    job = _job(recorder, job_id)
    assert (job.status, job.locked_by, job.attempts) == ("done", "busy", 1)


def test_a_failed_job_replaces_the_checks_earlier_findings(recorder: Recorder) -> None:
    trace_id = recorder.record(_agent)

    def broken(name: str | None) -> StandInModel:
        raise OSError("weights file is truncated")

    with registered(ModelCheck):
        for _ in range(2):
            _enqueue(recorder, trace_id, ["test_model_check"], max_attempts=1)
            run_worker(
                recorder.engine, worker_id="w", model_loader=broken, once=True, backoff_s=0.0
            )
    findings = recorder.findings(trace_id)
    assert [(f.check_name, f.status) for f in findings] == [("test_model_check", "error")]
