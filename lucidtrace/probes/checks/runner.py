"""Running checks on stored traces and storing their findings.

:func:`run_checks` runs checks on one trace inside the caller's transaction: each check's
earlier findings on that trace (and their attribution maps) are replaced, an exception becomes
an ``error`` finding (never lost), and the trace's verdict is recomputed. :func:`check_ingested`
runs the trace-only checks on freshly ingested traces in its own transaction. The queue of
model-based checks (``check_jobs``) lives in :mod:`lucidtrace.probes.checks.jobs` and is
re-exported here.

An attribution map a check returns is stored as an ``attributions`` row: ``tokens`` and
``scores`` in their columns, and the ``segments`` column holding ``{"items": [segment dicts],
...}`` plus the map's other keys (text, offsets, options).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.environment_variables import LUCIDTRACE_INGEST_CHECKS
from lucidtrace.probes.checks.base import CheckContext, CheckResult, SavedAttribution
from lucidtrace.probes.checks.registry import TRACE_ONLY, get_check, list_checks
from lucidtrace.store.engine import SQLITE_BEGIN_OPTION
from lucidtrace.store.errors import TraceNotFoundError
from lucidtrace.store.models import Attribution, Finding, Trace
from lucidtrace.store.repository import TraceDetail, get_trace, recompute_verdict

__all__ = [
    "ProgressCallback",
    "check_exported",
    "check_ingested",
    "claim_job",
    "delete_check_findings",
    "enqueue_checks",
    "ingest_checks_enabled",
    "is_proxy",
    "reasons",
    "resolve_checks",
    "run_checks",
    "run_checks_on",
    "run_worker",
]

ProgressCallback = Callable[[str, int, int], None]
"""Called after each check with (check name, checks done, checks in all)."""

_MESSAGE_LIMIT = 4000


def resolve_checks(checks: Sequence[str] | None, *, model: Any = None) -> list[str]:
    """The names of the checks to run.

    ``None`` means every applicable check: all registered checks with a model, the trace-only
    ones without. Named checks are kept in the given order, duplicates dropped.

    Raises:
        KeyError: A name is not registered (the message lists the known names).
        ValueError: A named check needs a model and ``model`` is None.
    """
    infos = {info.name: info for info in list_checks()}
    if checks is None:
        return [
            name for name, info in infos.items() if model is not None or info.access == TRACE_ONLY
        ]
    names: list[str] = []
    for raw in checks:
        name = raw.strip()
        if name in names:
            continue
        if name not in infos:
            get_check(name)  # raises KeyError listing the known names
        names.append(name)
    if model is None:
        needs_model = [name for name in names if infos[name].access != TRACE_ONLY]
        if needs_model:
            raise ValueError(
                f"check(s) {', '.join(needs_model)} need a local model: pass a model "
                "(lucidtrace check --model NAME) or queue them for a worker (--enqueue)"
            )
    return names


def is_proxy(model: Any, recorded_models: Iterable[str]) -> bool:
    """True when ``model`` is not one of the models the trace recorded (compared by name).

    Names match ignoring case, an organisation prefix (``HuggingFaceTB/``), a file suffix such
    as ``.gguf`` and a quantisation suffix (``.Q4_1``). A trace that recorded no model is
    judged on a proxy: nothing shows the local model is the one the agent ran on.
    """
    identity = getattr(model, "identity", None)
    name = getattr(identity, "name", None) or str(model)
    mine = _model_key(name)
    return not any(_model_key(str(recorded)) == mine for recorded in recorded_models if recorded)


def _model_key(name: str) -> str:
    key = name.strip().lower().replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".gguf", ".safetensors", ".bin"):
        key = key.removesuffix(suffix)
    head, dot, tail = key.rpartition(".")
    if dot and tail[:1] in {"q", "f"} and any(ch.isdigit() for ch in tail):
        key = head
    return key


def run_checks(
    session: Session,
    *,
    project_id: str,
    trace_id: str,
    checks: Sequence[str] | None = None,
    model: Any = None,
    thresholds: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    proxy: bool | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[Finding]:
    """Run checks on one stored trace and store their findings (the caller commits).

    Args:
        session: An open session; nothing is committed here.
        project_id: The trace's project.
        trace_id: The full trace id.
        checks: Check names; ``None`` runs every applicable check (see :func:`resolve_checks`).
        model: A :class:`lucidtrace.probes.LoadedModel` for model-based checks, or None.
        thresholds: ``{check name: threshold}`` overriding the checks' defaults.
        options: ``{check name: {option: value}}`` passed to the checks.
        proxy: Whether ``model`` is a stand-in for the agent's model; ``None`` decides by
            comparing its name with the models the trace recorded (:func:`is_proxy`).
        on_progress: Called after each check with (name, done, total).

    Returns:
        The stored findings, in check order.

    Raises:
        TraceNotFoundError: The trace does not exist in the project.
        KeyError: A check or threshold name is unknown.
        ValueError: A threshold is not a finite number, or a named check needs a model.
    """
    names = _validate(checks, model=model, thresholds=thresholds)
    detail = get_trace(session, project_id=project_id, trace_id=trace_id)
    if detail is None:
        raise TraceNotFoundError(f"no trace with id {trace_id!r} in project {project_id!r}")
    outcomes = _evaluate(
        detail,
        names,
        model=model,
        thresholds=thresholds,
        options=options,
        proxy=proxy,
        on_progress=on_progress,
    )
    return _store_outcomes(
        session, project_id=project_id, trace_id=trace_id, outcomes=outcomes, model=model
    )


def run_checks_on(
    engine: sa.Engine,
    *,
    project_id: str,
    trace_id: str,
    checks: Sequence[str] | None = None,
    model: Any = None,
    thresholds: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    proxy: bool | None = None,
    on_progress: ProgressCallback | None = None,
    then: Callable[[Session], None] | None = None,
) -> list[Finding]:
    """:func:`run_checks` in transactions of its own, holding none while the checks run.

    The trace is read in a short read transaction, the checks run outside any transaction, and
    the findings are written in one write transaction (``BEGIN IMMEDIATE`` on SQLite). A long
    model-based check therefore never blocks other writers (an exporter storing spans, a
    worker's heartbeat), and on SQLite a write that lands meanwhile cannot fail the run.
    ``then(session)`` runs inside the write transaction (a worker marks its job done there).
    Arguments and errors are those of :func:`run_checks`; the returned findings are detached.
    """
    names = _validate(checks, model=model, thresholds=thresholds)
    with Session(engine, expire_on_commit=False) as session:
        detail = get_trace(session, project_id=project_id, trace_id=trace_id)
        if detail is None:
            raise TraceNotFoundError(f"no trace with id {trace_id!r} in project {project_id!r}")
        session.expunge_all()
    outcomes = _evaluate(
        detail,
        names,
        model=model,
        thresholds=thresholds,
        options=options,
        proxy=proxy,
        on_progress=on_progress,
    )
    writer = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    with Session(writer, expire_on_commit=False) as session, session.begin():
        if session.get(Trace, (project_id, trace_id)) is None:
            raise TraceNotFoundError(f"trace {trace_id!r} was deleted while it was being checked")
        stored = _store_outcomes(
            session, project_id=project_id, trace_id=trace_id, outcomes=outcomes, model=model
        )
        if then is not None:
            then(session)
    return stored


@dataclass(frozen=True)
class _Outcome:
    name: str
    version: str
    results: list[CheckResult]
    uses_model: bool
    proxy: bool


def _validate(
    checks: Sequence[str] | None, *, model: Any, thresholds: Mapping[str, float] | None
) -> list[str]:
    names = resolve_checks(checks, model=model)
    for name, value in (thresholds or {}).items():
        get_check(name)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"threshold of check {name!r} must be a finite number, not {value!r}")
    return names


def _evaluate(
    detail: TraceDetail,
    names: list[str],
    *,
    model: Any,
    thresholds: Mapping[str, float] | None,
    options: Mapping[str, Mapping[str, Any]] | None,
    proxy: bool | None,
    on_progress: ProgressCallback | None,
) -> list[_Outcome]:
    """Run the checks on a trace already read; no database access."""
    if model is not None and proxy is None:
        proxy = is_proxy(model, detail.trace.models or [])
    context = CheckContext(
        detail=detail, model=model, proxy=bool(proxy and model is not None), options=options or {}
    )
    outcomes: list[_Outcome] = []
    for done, name in enumerate(names, start=1):
        check = get_check(name)
        threshold = float((thresholds or {}).get(name, check.default_threshold))
        uses_model = check.access != TRACE_ONLY and model is not None
        try:
            results = list(check.run(context, threshold=threshold))
            wrong = [type(r).__name__ for r in results if not isinstance(r, CheckResult)]
            if wrong:
                raise TypeError(f"run() must return CheckResult objects, not {', '.join(wrong)}")
            # A malformed value (a score that is no number, a bad step) is this check's error,
            # found here rather than when storing, where it would cost the other checks' results.
            results = [_normalised(result) for result in results]
            if not results:
                results = [
                    CheckResult(
                        status="inconclusive",
                        message="the check returned no result for this trace",
                        threshold=threshold,
                    )
                ]
        except Exception as error:
            results = [_error_result(error, threshold)]
        outcomes.append(
            _Outcome(name, check.version, results, uses_model, bool(uses_model and context.proxy))
        )
        if on_progress is not None:
            on_progress(name, done, len(names))
    return outcomes


def _store_outcomes(
    session: Session, *, project_id: str, trace_id: str, outcomes: list[_Outcome], model: Any
) -> list[Finding]:
    """Replace each check's findings on the trace by its new ones; recompute the verdict."""
    identity = getattr(model, "identity", None)
    stored: list[Finding] = []
    for outcome in outcomes:
        delete_check_findings(
            session, project_id=project_id, trace_id=trace_id, check_name=outcome.name
        )
        for result in outcome.results:
            stored.append(
                _store_result(
                    session,
                    project_id=project_id,
                    trace_id=trace_id,
                    check_name=outcome.name,
                    check_version=outcome.version,
                    result=result,
                    model_id=getattr(identity, "name", None) if outcome.uses_model else None,
                    weights_hash=getattr(identity, "weights_hash", None)
                    if outcome.uses_model
                    else None,
                    proxy=outcome.proxy,
                )
            )
    session.flush()
    recompute_verdict(session, project_id=project_id, trace_id=trace_id)
    return stored


def reasons(findings: Iterable[Finding]) -> list[str]:
    """The messages of the flagged findings, each prefixed by its check name."""
    return [
        f"{finding.check_name}: {finding.message}"
        for finding in findings
        if finding.status == "flagged"
    ]


def check_ingested(
    engine: sa.Engine,
    *,
    project_id: str,
    trace_ids: Iterable[str],
    thresholds: Mapping[str, float] | None = None,
) -> int:
    """Run the trace-only checks on freshly ingested traces, in one transaction of their own.

    Traces that no longer exist are skipped. Returns the number of traces checked.
    """
    unique = list(dict.fromkeys(trace_ids))
    if not unique:
        return 0
    checked = 0
    with Session(engine) as session, session.begin():
        for trace_id in unique:
            if session.get(Trace, (project_id, trace_id)) is None:
                continue
            run_checks(
                session,
                project_id=project_id,
                trace_id=trace_id,
                checks=None,
                model=None,
                thresholds=thresholds,
            )
            checked += 1
    return checked


_TRUE = frozenset({"1", "true", "yes", "on"})


def ingest_checks_enabled() -> bool:
    """Whether ``LUCIDTRACE_INGEST_CHECKS`` asks for trace-only checks on ingested traces."""
    return os.environ.get(LUCIDTRACE_INGEST_CHECKS, "").strip().lower() in _TRUE


def check_exported(engine: sa.Engine, *, project_id: str, records: Iterable[Any]) -> None:
    """After the in-process exporter stored spans: check their traces when enabled.

    Runs :func:`check_ingested` on the traces of ``records`` (objects with a ``trace_id``) when
    ``LUCIDTRACE_INGEST_CHECKS`` is true. A trace whose spans arrive in several batches is
    checked again with each batch (the findings are replaced, so the last check stands).
    Never raises: a failure is logged once and costs no stored span.
    """
    if not ingest_checks_enabled():
        return
    try:
        trace_ids = [str(record.trace_id) for record in records]
        check_ingested(engine, project_id=project_id, trace_ids=trace_ids)
    except Exception as error:
        from lucidtrace.tracer._log import log_once  # noqa: PLC0415 - keeps the runner light

        log_once(
            "ingest-checks",
            "lucidtrace: checks on exported traces failed (the spans are stored): %s: %.300s",
            type(error).__name__,
            str(error),
        )


def _error_result(error: BaseException, threshold: float) -> CheckResult:
    text = f"{type(error).__name__}: {error}"
    return CheckResult(
        status="error",
        message=f"the check failed to run: {text}"[:_MESSAGE_LIMIT],
        threshold=threshold,
        evidence={"error": text[:_MESSAGE_LIMIT], "error_type": type(error).__name__},
    )


def delete_check_findings(
    session: Session, *, project_id: str, trace_id: str, check_name: str
) -> None:
    """Delete a check's findings on a trace, with their attribution maps."""
    old_ids = sa.select(Finding.id).where(
        Finding.project_id == project_id,
        Finding.trace_id == trace_id,
        Finding.check_name == check_name,
    )
    session.execute(
        sa.delete(Attribution)
        .where(Attribution.finding_id.in_(old_ids))
        .execution_options(synchronize_session=False)
    )
    # ORM deletes (not a bulk DELETE): the loaded rows leave the identity map, so a new
    # finding that gets a reused id (SQLite reuses the highest rowid) is not mistaken for them.
    old = session.scalars(
        sa.select(Finding).where(
            Finding.project_id == project_id,
            Finding.trace_id == trace_id,
            Finding.check_name == check_name,
        )
    )
    for finding in old:
        session.delete(finding)
    session.flush()


def _store_result(
    session: Session,
    *,
    project_id: str,
    trace_id: str,
    check_name: str,
    check_version: str,
    result: CheckResult,
    model_id: str | None,
    weights_hash: str | None,
    proxy: bool,
) -> Finding:
    message = result.message
    if proxy and model_id:
        message = (
            f"{message} (measured on the local proxy model {model_id}, not the model the agent "
            "ran on)"
        )
    now = time.time_ns()
    finding = Finding(
        project_id=project_id,
        trace_id=trace_id,
        step_span_id=result.step[0] if result.step else None,
        step_seq=result.step[1] if result.step else None,
        check_name=check_name,
        check_version=check_version,
        status=result.status,
        score=result.score,
        threshold=result.threshold,
        message=message,
        evidence=dict(result.evidence),
        model_id=model_id,
        weights_hash=weights_hash,
        proxy=proxy,
        created_ns=now,
    )
    session.add(finding)
    session.flush()
    for saved in result.attributions:
        session.add(_attribution_row(saved, finding=finding, created_ns=now))
    return finding


def _attribution_row(saved: SavedAttribution, *, finding: Finding, created_ns: int) -> Attribution:
    data = _jsonable(dict(saved.data))
    rest = {
        key: value
        for key, value in data.items()
        if key not in {"method", "target", "tokens", "scores", "segments"}
    }
    return Attribution(
        project_id=finding.project_id,
        trace_id=finding.trace_id,
        finding_id=finding.id,
        method=saved.method,
        model_id=finding.model_id or data.get("model_name"),
        weights_hash=finding.weights_hash or data.get("weights_hash"),
        target=saved.target,
        tokens=list(data.get("tokens") or []),
        scores=list(data.get("scores") or []),
        segments={"items": data.get("segments") or [], **rest},
        created_ns=created_ns,
    )


def _normalised(result: CheckResult) -> CheckResult:
    """``result`` with storable values: finite scores, a ``(span_id, seq)`` step, JSON evidence.

    Raises:
        TypeError, ValueError: A value cannot be stored (the check's error).
    """
    step = result.step
    if step is not None:
        span_id, seq = step
        if not isinstance(span_id, str) or isinstance(seq, bool):
            raise TypeError(f"step must be (span_id, seq), not {step!r}")
        step = (span_id, int(seq))
    return dataclasses.replace(
        result,
        message=str(result.message),
        score=_finite(result.score),
        threshold=_finite(result.threshold),
        evidence=_jsonable(dict(result.evidence)),
        step=step,
    )


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _jsonable(value: Any) -> Any:
    """``value`` made JSON-ready: tuples as lists, NaN as None, unknown objects as text."""
    cleaned = _clean(value)
    json.dumps(cleaned)
    return cleaned


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist") and callable(value.tolist):
        return _clean(value.tolist())
    return str(value)


# The queue functions use run_checks; they are re-exported here as part of the runner's API.
from lucidtrace.probes.checks.jobs import claim_job, enqueue_checks, run_worker  # noqa: E402
