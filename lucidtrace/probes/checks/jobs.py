"""The ``check_jobs`` queue: model-based checks run later by ``lucidtrace worker``.

A job names a trace, the checks to run and the model to run them with. Workers claim jobs with
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of workers share one queue
without a broker; on SQLite the claim is one ``BEGIN IMMEDIATE`` transaction (one writer at a
time, so run one worker). Every claim is also a conditional ``UPDATE`` of the row, so two workers
can never both take the same job.

A job whose run fails (the model cannot be loaded, the database went away) goes back to the queue
with a growing delay until it has been tried ``max_attempts`` times; the last failure is stored
as an ``error`` finding on the trace for each of the job's checks. A job held by a worker that
died (its ``locked_ns`` older than the lease) is taken by the next worker that looks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace import environment_variables
from lucidtrace.probes.checks.registry import get_check, is_trace_only
from lucidtrace.store.engine import SQLITE_BEGIN_OPTION
from lucidtrace.store.errors import TraceNotFoundError
from lucidtrace.store.models import CheckJob, Finding, Trace
from lucidtrace.store.repository import recompute_verdict

__all__ = [
    "DEFAULT_BACKOFF_S",
    "DEFAULT_LEASE_S",
    "DEFAULT_MAX_ATTEMPTS",
    "ModelLoader",
    "claim_job",
    "default_worker_id",
    "enqueue_checks",
    "run_worker",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3
"""How many times a job is tried before it fails for good."""

DEFAULT_LEASE_S = 300.0
"""Seconds a claimed job stays with its worker without news; after that another worker may take
it. A running worker renews the lease of its job every third of this time (a heartbeat), so a
job may run longer than the lease; only a worker that stopped loses its job."""

DEFAULT_BACKOFF_S = 5.0
"""Delay before the first retry of a failed job; doubled for each later attempt."""

ModelLoader = Callable[[str | None], Any]
"""Loads the model a job names (``None``: the worker's default model)."""

_ERROR_LIMIT = 4000
_NS = 1_000_000_000


def default_worker_id() -> str:
    """``host:pid:thread``: unique among the workers sharing a queue."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def enqueue_checks(
    session: Session,
    *,
    project_id: str,
    trace_id: str,
    checks: Sequence[str],
    model: str | None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> CheckJob:
    """Queue checks on one trace for a worker (the caller commits).

    Args:
        session: An open session.
        project_id: The trace's project.
        trace_id: The full trace id.
        checks: Check names; empty runs every check the worker's model allows.
        model: The model to run them with (a name or path), ``None`` for the worker's default.
        max_attempts: Tries before the job fails for good.

    Raises:
        TraceNotFoundError: The trace does not exist in the project.
        KeyError: A check name is unknown.
        ValueError: ``max_attempts`` is below 1.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    names = list(dict.fromkeys(name.strip() for name in checks))
    for name in names:
        get_check(name)
    if session.get(Trace, (project_id, trace_id)) is None:
        raise TraceNotFoundError(f"no trace with id {trace_id!r} in project {project_id!r}")
    now = time.time_ns()
    job = CheckJob(
        project_id=project_id,
        trace_id=trace_id,
        checks=names,
        model=model,
        status="queued",
        attempts=0,
        max_attempts=max_attempts,
        created_ns=now,
        updated_ns=now,
    )
    session.add(job)
    session.flush()
    return job


def claim_job(
    session: Session, *, worker_id: str, lease_s: float = DEFAULT_LEASE_S
) -> CheckJob | None:
    """Take the oldest runnable job for ``worker_id`` and mark it running (the caller commits).

    Runnable: queued and not waiting for a retry delay, or running under a lease older than
    ``lease_s`` (its worker is taken to be dead). A job whose lease ran out on its last attempt
    fails instead, with an ``error`` finding. On SQLite, call it in a transaction begun with
    ``BEGIN IMMEDIATE`` (``execution_options(lucidtrace_sqlite_begin="IMMEDIATE")``), as
    :func:`run_worker` does.

    Returns:
        The claimed job (``attempts`` counts this try), or None when nothing is runnable.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    while True:
        now = time.time_ns()
        expired = now - int(lease_s * _NS)
        runnable = sa.or_(
            sa.and_(
                CheckJob.status == "queued",
                sa.or_(CheckJob.locked_ns.is_(None), CheckJob.locked_ns <= now),
            ),
            sa.and_(CheckJob.status == "running", CheckJob.locked_ns < expired),
        )
        query = sa.select(CheckJob).where(runnable).order_by(CheckJob.created_ns, CheckJob.id)
        query = query.limit(1)
        if postgres:
            query = query.with_for_update(skip_locked=True)
        job = session.scalars(query).first()
        if job is None:
            return None
        was_running = job.status == "running"
        if was_running and job.attempts >= job.max_attempts:
            _fail_job(
                session,
                job,
                f"worker {job.locked_by} stopped while running the job (no news for "
                f"{lease_s:g} s) on its last attempt",
            )
            continue
        # The conditional update makes the claim safe whatever the isolation level: a worker
        # that lost the race updates no row and looks again.
        claimed = session.execute(
            sa.update(CheckJob)
            .where(
                CheckJob.id == job.id,
                CheckJob.status == job.status,
                CheckJob.attempts == job.attempts,
                runnable,
            )
            .values(
                status="running",
                locked_by=worker_id,
                locked_ns=now,
                attempts=job.attempts + 1,
                updated_ns=now,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(job)
            if was_running:
                logger.warning("job %s: reclaimed from worker that stopped answering", job.id)
            return job
        session.expire(job)


def run_worker(
    engine: sa.Engine,
    *,
    worker_id: str | None = None,
    model_loader: ModelLoader,
    once: bool = False,
    poll_interval: float = 2.0,
    max_jobs: int | None = None,
    lease_s: float | None = None,
    backoff_s: float = DEFAULT_BACKOFF_S,
    stop: threading.Event | None = None,
    on_job: Callable[[CheckJob, str], None] | None = None,
) -> int:
    """Run queued check jobs until stopped.

    Args:
        engine: The store.
        worker_id: This worker's name in ``locked_by`` (default :func:`default_worker_id`).
        model_loader: Loads a job's model by name (``None``: the default); each model is loaded
            once per worker.
        once: Return when no job is runnable instead of waiting for more.
        poll_interval: Seconds between looks at an empty queue.
        max_jobs: Return after this many claimed jobs.
        lease_s: Seconds a job stays with its worker (default ``LUCIDTRACE_WORKER_LEASE_S`` or
            :data:`DEFAULT_LEASE_S`).
        backoff_s: Delay before the first retry; doubled for each later attempt.
        stop: Set it to make the worker return after its current job.
        on_job: Called after each job with the job and its outcome (``done``, ``retry``,
            ``failed``).

    Returns:
        The number of jobs claimed.
    """
    worker = worker_id or default_worker_id()
    lease = (
        lease_s
        if lease_s is not None
        else _env_float(environment_variables.LUCIDTRACE_WORKER_LEASE_S, DEFAULT_LEASE_S)
    )
    claiming = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    models: dict[str | None, Any] = {}
    handled = 0
    while max_jobs is None or handled < max_jobs:
        if stop is not None and stop.is_set():
            break
        with Session(claiming) as session, session.begin():
            job = claim_job(session, worker_id=worker, lease_s=lease)
            if job is not None:
                session.expunge(job)
        if job is None:
            if once:
                break
            if stop is not None:
                if stop.wait(poll_interval):
                    break
            else:
                time.sleep(poll_interval)
            continue
        handled += 1
        beat = _Heartbeat(engine, job.id, worker, interval=lease / 3)
        beat.start()
        try:
            outcome = _run_job(
                engine,
                claiming,
                job,
                worker=worker,
                models=models,
                model_loader=model_loader,
                backoff_s=backoff_s,
            )
        except KeyboardInterrupt:
            beat.stop()
            _release(claiming, job, worker)
            raise
        finally:
            beat.stop()
        if on_job is not None:
            on_job(job, outcome)
    return handled


def _run_job(
    engine: sa.Engine,
    claiming: sa.Engine,
    job: CheckJob,
    *,
    worker: str,
    models: dict[str | None, Any],
    model_loader: ModelLoader,
    backoff_s: float,
) -> str:
    """Run one claimed job; ``done``, ``retry`` or ``failed``."""
    from lucidtrace.probes.checks.runner import run_checks_on  # noqa: PLC0415 - runner imports us

    try:
        names = list(job.checks)
        model = None
        # A job of trace-only checks needs no model: none is loaded for it.
        if not names or not all(is_trace_only(name) for name in names):
            if job.model not in models:
                models[job.model] = model_loader(job.model)
            model = models[job.model]
        # No transaction is held while the checks run (see run_checks_on); the job is marked
        # done in the transaction that stores the findings.
        run_checks_on(
            engine,
            project_id=job.project_id,
            trace_id=job.trace_id,
            checks=names or None,
            model=model,
            then=lambda session: _finish_job(session, job.id, worker),
        )
    except TraceNotFoundError as error:
        with Session(claiming) as session, session.begin():
            row = session.get(CheckJob, job.id)
            if row is not None:
                _fail_job(session, row, str(error), record=False)
        return "failed"
    except Exception as error:  # any failure is retried, then recorded
        text = f"{type(error).__name__}: {error}"
        logger.warning("job %s (attempt %s) failed: %s", job.id, job.attempts, text)
        with Session(claiming) as session, session.begin():
            row = session.get(CheckJob, job.id)
            if row is None or row.locked_by != worker or row.status != "running":
                return "failed"  # deleted, or taken over by another worker after the lease
            if row.attempts >= row.max_attempts:
                _fail_job(session, row, text)
                return "failed"
            delay = backoff_s * (2 ** max(row.attempts - 1, 0))
            now = time.time_ns()
            row.status = "queued"
            row.locked_by = None
            row.locked_ns = now + int(delay * _NS)  # not claimable before the delay is over
            row.error = text[:_ERROR_LIMIT]
            row.updated_ns = now
        return "retry"
    return "done"


class _Heartbeat:
    """Renews ``locked_ns`` of a running job from a thread, so its lease does not run out."""

    def __init__(self, engine: sa.Engine, job_id: int, worker: str, *, interval: float) -> None:
        self._engine = engine
        self._job_id = job_id
        self._worker = worker
        self._interval = max(interval, 0.01)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lucidtrace-heartbeat-{job_id}", daemon=True
        )

    def start(self) -> None:
        """Start renewing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (idempotent)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                with self._engine.begin() as conn:
                    conn.execute(
                        sa.update(CheckJob)
                        .where(
                            CheckJob.id == self._job_id,
                            CheckJob.locked_by == self._worker,
                            CheckJob.status == "running",
                        )
                        .values(locked_ns=time.time_ns())
                    )
            except Exception as error:  # a missed beat only shortens the lease
                logger.warning("job %s: lease not renewed: %s", self._job_id, error)


def _release(claiming: sa.Engine, job: CheckJob, worker: str) -> None:
    """Give an interrupted job back to the queue at once (the attempt does not count)."""
    now = time.time_ns()
    with Session(claiming) as session, session.begin():
        session.execute(
            sa.update(CheckJob)
            .where(CheckJob.id == job.id, CheckJob.locked_by == worker)
            .values(
                status="queued",
                locked_by=None,
                locked_ns=None,
                attempts=CheckJob.attempts - 1,
                updated_ns=now,
            )
            .execution_options(synchronize_session=False)
        )


def _finish_job(session: Session, job_id: int, worker: str) -> None:
    now = time.time_ns()
    session.execute(
        sa.update(CheckJob)
        .where(CheckJob.id == job_id, CheckJob.locked_by == worker)
        .values(status="done", error=None, updated_ns=now)
        .execution_options(synchronize_session=False)
    )


def _fail_job(session: Session, job: CheckJob, error: str, *, record: bool = True) -> None:
    """Mark a job failed for good and store the failure as an error finding per check."""
    now = time.time_ns()
    job.status = "failed"
    job.error = error[:_ERROR_LIMIT]
    job.updated_ns = now
    if not record or session.get(Trace, (job.project_id, job.trace_id)) is None:
        session.flush()
        return
    message = (
        f"the check could not run after {job.attempts} attempt(s) "
        f"(job {job.id}, model {job.model or 'default'}): {error}"
    )[:_ERROR_LIMIT]
    # The failure replaces the check's earlier findings, as a completed run would.
    from lucidtrace.probes.checks.runner import delete_check_findings  # noqa: PLC0415 - cycle

    for name in list(job.checks) or ["check_job"]:
        delete_check_findings(
            session, project_id=job.project_id, trace_id=job.trace_id, check_name=name
        )
        try:
            version = get_check(name).version
        except KeyError:
            version = "unknown"
        session.add(
            Finding(
                project_id=job.project_id,
                trace_id=job.trace_id,
                check_name=name,
                check_version=version,
                status="error",
                message=message,
                evidence={"error": error[:_ERROR_LIMIT], "job_id": job.id},
                model_id=job.model,
                created_ns=now,
            )
        )
    session.flush()
    recompute_verdict(session, project_id=job.project_id, trace_id=job.trace_id)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        logger.warning("%s=%r is not a number; using %s", name, raw, default)
        return default
    return value if value > 0 else default
