"""`lucidtrace check` and `lucidtrace worker` through the real CLI."""

from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.cli import main
from lucidtrace.store.models import CheckJob, Finding
from tests.checks.conftest import Recorder


def _miscopy() -> None:
    with lt.tool_call("calculator", {"expression": "387758*387758"}) as call:
        call.set_result(150356266564)
    lt.answer("The result is 15,035,626,656.")


def _faithful() -> None:
    with lt.tool_call("calculator", {"expression": "387758*387758"}) as call:
        call.set_result(150356266564)
    lt.answer("The result is 150,356,266,564.")


def _cli(rec: Recorder, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--database-url", rec.url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_check_list_shows_the_registry(sqlite_recorder: Recorder) -> None:
    code, out, _ = _cli(sqlite_recorder, "check", "--list")
    assert code == 0
    for name in ("observation_grounding", "plan_action_consistency", "citation_grounding",
                 "evidence_ignored"):  # fmt: skip
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert " trace " in line
        assert " free " in line


def test_check_one_trace_prints_the_verdict_and_the_reasons(sqlite_recorder: Recorder) -> None:
    trace_id = sqlite_recorder.record(_miscopy, question="387758 * 387758?")
    code, out, _ = _cli(sqlite_recorder, "check", trace_id[:10])
    assert code == 0, out
    assert out.splitlines()[0] == f"{trace_id}  flagged"
    assert "  - observation_grounding: the answer is not supported" in out
    assert "15,035,626,656" in out
    assert sqlite_recorder.verdict(trace_id) == "flagged"


def test_check_all_with_selected_checks_and_thresholds(sqlite_recorder: Recorder) -> None:
    bad = sqlite_recorder.record(_miscopy, question="387758 * 387758?")
    good = sqlite_recorder.record(_faithful, question="387758 * 387758?")
    code, out, _ = _cli(sqlite_recorder, "check", "--all", "--checks", "observation_grounding")
    assert code == 0, out
    assert f"{bad}  flagged" in out
    assert f"{good}  clear" in out
    code, out, _ = _cli(
        sqlite_recorder, "check", bad, "--threshold", "observation_grounding=1.5", "--json"
    )
    assert code == 0, out
    (entry,) = json.loads(out)
    assert entry["trace_id"] == bad
    # Only the raised threshold changed: the other check still flags the miscopy.
    assert [reason.split(":")[0] for reason in entry["reasons"]] == ["evidence_ignored"]
    og = next(f for f in entry["findings"] if f["check_name"] == "observation_grounding")
    assert og["status"] == "passed"
    assert og["threshold"] == 1.5


def test_bad_input_is_refused_and_changes_nothing(sqlite_recorder: Recorder) -> None:
    trace_id = sqlite_recorder.record(_miscopy, question="387758 * 387758?")
    assert _cli(sqlite_recorder, "check", trace_id)[0] == 0
    before = [(f.id, f.status) for f in sqlite_recorder.findings(trace_id)]
    for args, message in [
        (["check", trace_id, "--threshold", "observation_grounding=high"], "not a number"),
        (["check", trace_id, "--threshold", "nope=0.5"], "no check named 'nope'"),
        (["check", trace_id, "--checks", "nope"], "no check named 'nope'"),
        (["check"], "give a TRACE_ID or --all"),
        (["check", trace_id, "--all"], "give a TRACE_ID or --all"),
        (["check", "ffff"], "no trace with id 'ffff'"),
    ]:
        code, _, err = _cli(sqlite_recorder, *args)
        assert code != 0, args
        assert message in err, (args, err)
        assert "Traceback" not in err
    assert [(f.id, f.status) for f in sqlite_recorder.findings(trace_id)] == before


def test_enqueue_then_worker_once(sqlite_recorder: Recorder) -> None:
    trace_id = sqlite_recorder.record(_miscopy, question="387758 * 387758?")
    code, out, _ = _cli(
        sqlite_recorder, "check", trace_id, "--checks", "early_answering", "--enqueue"
    )
    assert code == 0, out
    assert "queued job 1: early_answering" in out
    with Session(sqlite_recorder.engine) as session:
        (job,) = session.scalars(sa.select(CheckJob))
        assert (job.trace_id, job.checks, job.status, job.model) == (
            trace_id,
            ["early_answering"],
            "queued",
            None,
        )
        # A job of a trace-only check, which the worker runs without loading a model.
        session.execute(sa.update(CheckJob).values(checks=["observation_grounding"]))
        session.commit()
    code, out, _ = _cli(sqlite_recorder, "worker", "--once", "--worker-id", "cli-worker")
    assert code == 0, out
    assert f"job 1 trace {trace_id}: done (attempt 1)" in out
    with Session(sqlite_recorder.engine) as session:
        (job,) = session.scalars(sa.select(CheckJob))
        assert (job.status, job.locked_by) == ("done", "cli-worker")
        statuses = {f.check_name: f.status for f in session.scalars(sa.select(Finding))}
    assert statuses == {"observation_grounding": "flagged"}
