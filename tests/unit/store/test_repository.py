from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.store import (
    AmbiguousTraceIdError,
    TraceNotFoundError,
    add_finding,
    count_traces,
    create_engine,
    delete_trace,
    ensure_project,
    export_trace,
    find_trace_ids,
    get_trace,
    list_traces,
    recompute_verdict,
    resolve_trace_id,
)
from lucidtrace.store.models import (
    Attribution,
    CheckJob,
    Document,
    Finding,
    Span,
    Step,
    Trace,
)

SECOND = 1_000_000_000


def add_trace(
    session: Session, trace_id: str, *, project_id: str = "default", **fields: Any
) -> Trace:
    """Insert a trace row directly (with a root span), as ingest would leave it."""
    ensure_project(session, project_id=project_id)
    start = fields.pop("start_ns", 100 * SECOND)
    values: dict[str, Any] = {
        "name": "agent",
        "status": "ok",
        "start_ns": start,
        "end_ns": start + 2 * SECOND,
        "span_count": 1,
        "updated_ns": start,
        "root_span_id": trace_id[:16],
    }
    values.update(fields)
    trace = Trace(project_id=project_id, trace_id=trace_id, **values)
    session.add(trace)
    session.flush()  # the models declare no relationships: flush parents before children
    session.add(
        Span(
            project_id=project_id,
            span_id=trace_id[:16],
            trace_id=trace_id,
            name=values["name"] or "root",
            kind="AGENT",
            start_ns=start,
            end_ns=values["end_ns"],
            ingested_ns=start,
        )
    )
    session.flush()
    return trace


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_list_traces_newest_first_with_summaries(session: Session) -> None:
    add_trace(session, "a" * 32, start_ns=1 * SECOND, name="old", tags=["x"], models=["m1"])
    add_trace(session, "b" * 32, start_ns=3 * SECOND, name="new", input_tokens=7)
    add_trace(session, "c" * 32, start_ns=2 * SECOND, name="mid")
    rows = list_traces(session)
    assert [row.name for row in rows] == ["new", "mid", "old"]
    assert rows[0].duration_ns == 2 * SECOND
    assert rows[0].input_tokens == 7
    assert rows[2].tags == ["x"]
    assert rows[2].models == ["m1"]
    assert [row.name for row in list_traces(session, order="start")] == ["old", "mid", "new"]
    assert [row.name for row in list_traces(session, limit=1, offset=1)] == ["mid"]
    json.dumps([row.to_dict() for row in rows])


def test_list_traces_filters_and_count_agree(session: Session) -> None:
    add_trace(session, "a" * 32, status="error", session_id="s1", user_id="u1", tags=["prod", "v2"])
    add_trace(session, "b" * 32, verdict="flagged", session_id="s1", name="Weather 100%")
    add_trace(session, "c" * 32, start_ns=500 * SECOND, tags=["dev"], name="weather_bot")
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"status": "error"}, {"a"}),
        ({"verdict": "flagged"}, {"b"}),
        ({"verdict": "unchecked"}, {"a", "c"}),
        ({"session_id": "s1"}, {"a", "b"}),
        ({"user_id": "u1"}, {"a"}),
        ({"tag": "prod"}, {"a"}),
        ({"tag": "pro"}, set()),
        ({"name": "WEATHER"}, {"b", "c"}),
        ({"name": "100%"}, {"b"}),
        ({"name": "r_b"}, {"c"}),
        ({"since_ns": 200 * SECOND}, {"c"}),
        ({"until_ns": 200 * SECOND}, {"a", "b"}),
    ]
    for filters, expected in cases:
        found = {row.trace_id[0] for row in list_traces(session, **filters)}
        assert found == expected, filters
        assert count_traces(session, **filters) == len(expected), filters


def test_projects_are_isolated(session: Session) -> None:
    add_trace(session, "a" * 32)
    add_trace(session, "b" * 32, project_id="other")
    assert [row.trace_id for row in list_traces(session)] == ["a" * 32]
    assert count_traces(session, project_id="other") == 1
    assert get_trace(session, project_id="other", trace_id="a" * 32) is None
    assert find_trace_ids(session, prefix="b") == []
    assert delete_trace(session, project_id="other", trace_id="a" * 32) is False


def test_unknown_order_is_rejected(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown order"):
        list_traces(session, order="-size")


def test_trace_id_prefixes_resolve_like_git(session: Session) -> None:
    add_trace(session, "abc1" + "0" * 28)
    add_trace(session, "abc2" + "0" * 28)
    assert resolve_trace_id(session, ref="ABC1") == "abc1" + "0" * 28
    assert resolve_trace_id(session, ref="abc2" + "0" * 28) == "abc2" + "0" * 28
    assert find_trace_ids(session, prefix="abc") == ["abc1" + "0" * 28, "abc2" + "0" * 28]
    with pytest.raises(AmbiguousTraceIdError, match="matches several traces"):
        resolve_trace_id(session, ref="abc")
    with pytest.raises(TraceNotFoundError, match="no trace"):
        resolve_trace_id(session, ref="fff")
    with pytest.raises(TraceNotFoundError):
        resolve_trace_id(session, ref="ab%")
    assert find_trace_ids(session, prefix="") == []


def _populate_trail(session: Session, trace_id: str) -> None:
    add_trace(session, trace_id)
    span_a, span_b = "1" * 16, "2" * 16
    for span_id, start in ((span_b, 10), (span_a, 20)):
        session.add(
            Span(
                project_id="default",
                span_id=span_id,
                trace_id=trace_id,
                parent_span_id=trace_id[:16],
                name=f"span {span_id[0]}",
                kind="RETRIEVER",
                start_ns=start,
                end_ns=start + 5,
                ingested_ns=0,
            )
        )
    # Inserted out of order: the trail is ordered by (ts_ns, span_id, seq) when read.
    rows = [
        (span_a, 1, 30, "ANSWER"),
        (span_b, 0, 10, "RETRIEVAL"),
        (span_a, 0, 30, "THOUGHT"),
        (span_b, 1, 20, "THOUGHT"),
        (span_a, 2, 5, "THOUGHT"),
    ]
    for span_id, seq, ts, kind in rows:
        session.add(
            Step(
                project_id="default",
                span_id=span_id,
                seq=seq,
                trace_id=trace_id,
                ts_ns=ts,
                type=kind,
                text=f"{kind} {span_id[0]}{seq}",
                citations=["d1"] if kind == "ANSWER" else [],
            )
        )
    for span_id, rank in ((span_a, 1), (span_b, 1), (span_a, 0)):
        session.add(
            Document(
                project_id="default",
                span_id=span_id,
                rank=rank,
                trace_id=trace_id,
                doc_id=f"d{span_id[0]}{rank}",
                score=float("nan") if rank == 1 else 0.5,
                content="text",
                metadata_={"k": "v"},
            )
        )
    session.flush()


def test_get_trace_orders_the_trail(session: Session) -> None:
    trace_id = "d" * 32
    _populate_trail(session, trace_id)
    detail = get_trace(session, trace_id=trace_id)
    assert detail is not None
    assert [(e.index, e.step.text) for e in detail.steps] == [
        (1, "THOUGHT 12"),
        (2, "RETRIEVAL 20"),
        (3, "THOUGHT 21"),
        (4, "THOUGHT 10"),
        (5, "ANSWER 11"),
    ]
    assert [span.start_ns for span in detail.spans] == sorted(
        span.start_ns for span in detail.spans
    )
    # Documents follow their spans' order (span 2 started first), then rank.
    assert [doc.doc_id for doc in detail.documents] == ["d21", "d10", "d11"]
    assert get_trace(session, trace_id="e" * 32) is None


def test_export_trace_is_one_json_document(session: Session) -> None:
    trace_id = "d" * 32
    _populate_trail(session, trace_id)
    add_finding(
        session, trace_id=trace_id, check_name="grounding", check_version="1", status="passed"
    )
    document = export_trace(session, trace_id=trace_id)
    assert document is not None
    assert set(document) == {"trace", "spans", "steps", "documents", "findings"}
    assert document["trace"]["trace_id"] == trace_id
    assert [step["index"] for step in document["steps"]] == [1, 2, 3, 4, 5]
    assert document["steps"][-1]["citations"] == ["d1"]
    assert document["documents"][0]["metadata"] == {"k": "v"}
    assert [doc["score"] for doc in document["documents"]] == [None, 0.5, None]  # NaN: not JSON
    assert document["findings"][0]["check_name"] == "grounding"
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert export_trace(session, trace_id="e" * 32) is None


def test_verdict_follows_findings(session: Session) -> None:
    trace_id = "f" * 32
    add_trace(session, trace_id)
    assert recompute_verdict(session, trace_id=trace_id) == "unchecked"
    for status in ("inconclusive", "error"):
        add_finding(session, trace_id=trace_id, check_name=status, check_version="1", status=status)
    # Checks that could not conclude do not make a trace clear.
    assert session.get(Trace, ("default", trace_id)).verdict == "unchecked"  # type: ignore[union-attr]
    add_finding(session, trace_id=trace_id, check_name="a", check_version="1", status="passed")
    assert session.get(Trace, ("default", trace_id)).verdict == "clear"  # type: ignore[union-attr]
    add_finding(
        session,
        trace_id=trace_id,
        check_name="b",
        check_version="1",
        status="flagged",
        score=0.9,
        evidence={"claim": "x"},
    )
    assert list_traces(session, verdict="flagged")[0].trace_id == trace_id
    session.execute(sa.delete(Finding).where(Finding.status == "flagged"))
    assert recompute_verdict(session, trace_id=trace_id) == "clear"
    session.execute(sa.delete(Finding))
    assert recompute_verdict(session, trace_id=trace_id) == "unchecked"


def test_add_finding_rejects_bad_input(session: Session) -> None:
    add_trace(session, "a" * 32)
    with pytest.raises(ValueError, match="unknown finding status"):
        add_finding(session, trace_id="a" * 32, check_name="c", check_version="1", status="ok")
    with pytest.raises(TraceNotFoundError):
        add_finding(session, trace_id="b" * 32, check_name="c", check_version="1", status="passed")
    with pytest.raises(TraceNotFoundError):
        recompute_verdict(session, trace_id="b" * 32)


def test_delete_trace_removes_everything_about_it(session: Session) -> None:
    keep, gone = "a" * 32, "d" * 32
    add_trace(session, keep)
    _populate_trail(session, gone)
    finding = add_finding(
        session, trace_id=gone, check_name="c", check_version="1", status="flagged"
    )
    session.add(
        Attribution(
            project_id="default", trace_id=gone, finding_id=finding.id, method="m", created_ns=1
        )
    )
    session.add(CheckJob(project_id="default", trace_id=gone, created_ns=1, updated_ns=1))
    session.flush()
    assert delete_trace(session, trace_id=gone) is True
    session.commit()
    for model in (Trace, Span, Step, Document, Finding, Attribution, CheckJob):
        remaining = session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.trace_id == gone)
        )
        assert remaining == 0, model.__tablename__
    assert [row.trace_id for row in list_traces(session)] == [keep]
    assert delete_trace(session, trace_id=gone) is False


def test_ensure_project_is_idempotent(session: Session) -> None:
    first = ensure_project(session, project_id="p", name="Project P")
    second = ensure_project(session, project_id="p")
    assert first is second
    assert second.name == "Project P"
