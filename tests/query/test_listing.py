"""Trace lists: new filters, every order, keyset pages, sessions, findings overview."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.store import (
    ORDERS,
    add_finding,
    count_traces,
    findings_overview,
    list_sessions,
    list_trace_page,
    list_traces,
)
from tests.query.traces import SECOND, T0, agent_trace, store

DAY = 86_400 * SECOND


def _names(rows: list) -> list[str | None]:  # type: ignore[type-arg]
    return [row.name for row in rows]


def test_check_and_model_filters(engine: sa.Engine, db: Session) -> None:
    flagged = store(engine, agent_trace(name="flagged", model="m-big"))
    passed = store(engine, agent_trace(name="passed", start_s=1))
    store(engine, agent_trace(name="unchecked", start_s=2))
    add_finding(
        db, trace_id=flagged, check_name="citation_support", check_version="1", status="flagged"
    )
    add_finding(
        db, trace_id=passed, check_name="citation_support", check_version="1", status="passed"
    )
    add_finding(db, trace_id=passed, check_name="tool_error", check_version="1", status="flagged")
    db.commit()

    assert _names(list_traces(db, check="citation_support")) == ["passed", "flagged"]
    assert _names(list_traces(db, check="citation_support", check_status="flagged")) == ["flagged"]
    assert _names(list_traces(db, check_status="flagged")) == ["passed", "flagged"]
    assert count_traces(db, check="tool_error") == 1
    assert _names(list_traces(db, model="m-big")) == ["flagged"]
    assert _names(list_traces(db, model="gpt-test")) == ["unchecked", "passed"]
    assert list_traces(db, model="gpt") == []  # exact model names, not a substring


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verdict": "bad"}, "unknown verdict"),
        ({"status": "fine"}, "unknown status"),
        ({"check_status": "red"}, "unknown check status"),
        ({"order": "size"}, "unknown order"),
        ({"cursor": "not a cursor"}, "bad cursor"),
    ],
)
def test_bad_filter_values_are_refused(db: Session, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        list_traces(db, **kwargs)


def test_every_order_both_ways_is_total_and_stable(engine: sa.Engine, db: Session) -> None:
    # Equal start times, names and step counts: the trace id must break the ties.
    for index, (name, duration) in enumerate(
        [("b", 3), ("a", 1), ("c", 2), ("a", 2), ("b", 1), ("c", 3)]
    ):
        store(engine, agent_trace(name=name, start_s=index // 2, duration_s=duration))
    tid = store(engine, agent_trace(name="z", start_s=9))
    add_finding(db, trace_id=tid, check_name="x", check_version="1", status="flagged")
    db.commit()
    everything = {row.trace_id for row in list_traces(db, limit=100)}
    assert len(everything) == 7
    for field in ORDERS:
        for order in (field, f"-{field}"):
            rows = list_traces(db, order=order, limit=100)
            assert {row.trace_id for row in rows} == everything
            # Walking the list with a page size of 2 gives exactly the one-page list.
            walked, cursor = [], None
            while True:
                page = list_trace_page(db, order=order, limit=2, cursor=cursor)
                walked.extend(row.trace_id for row in page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert walked == [row.trace_id for row in rows], order
    assert list_traces(db, order="-verdict")[0].trace_id == tid
    durations = [row.duration_ns for row in list_traces(db, order="-duration", limit=100)]
    assert durations == sorted(durations, reverse=True)
    names = _names(list_traces(db, order="name", limit=100))
    assert names == sorted(names)  # type: ignore[type-var]


def test_a_cursor_of_another_order_is_refused(engine: sa.Engine, db: Session) -> None:
    for index in range(3):
        store(engine, agent_trace(name=f"t{index}", start_s=index))
    page = list_trace_page(db, limit=1)
    assert page.next_cursor is not None
    with pytest.raises(ValueError, match="ordered by '-start'"):
        list_traces(db, order="name", cursor=page.next_cursor)


def test_keyset_pages_do_not_shift_when_traces_arrive(engine: sa.Engine, db: Session) -> None:
    for index in range(4):
        store(engine, agent_trace(name=f"t{index}", start_s=index))
    first = list_trace_page(db, limit=2)
    assert _names(first.items) == ["t3", "t2"]
    store(engine, agent_trace(name="newer", start_s=100))
    second = list_trace_page(db, limit=2, cursor=first.next_cursor)
    assert _names(second.items) == ["t1", "t0"]
    assert second.next_cursor is None


def test_time_range_and_filters_combine(engine: sa.Engine, db: Session) -> None:
    store(engine, agent_trace(name="early", start_s=0, tags=["prod"]))
    store(engine, agent_trace(name="late", start_s=50, tags=["prod"]))
    store(engine, agent_trace(name="later", start_s=90, tags=["dev"]))
    since, until = T0 + 10 * SECOND, T0 + 100 * SECOND
    assert _names(list_traces(db, since_ns=since, until_ns=until)) == ["later", "late"]
    assert _names(list_traces(db, since_ns=since, tag="prod")) == ["late"]
    assert count_traces(db, since_ns=since, until_ns=until, tag="dev") == 1


def test_sessions(engine: sa.Engine, db: Session) -> None:
    first = store(engine, agent_trace(name="a1", start_s=0, session_id="chat-a"))
    store(engine, agent_trace(name="a2", start_s=30, session_id="chat-a"))
    store(engine, agent_trace(name="b1", start_s=10, session_id="chat-b"))
    store(engine, agent_trace(name="loose", start_s=40))
    add_finding(db, trace_id=first, check_name="c", check_version="1", status="flagged")
    db.commit()

    sessions = list_sessions(db)
    assert [s.session_id for s in sessions] == ["chat-a", "chat-b"]
    chat_a = sessions[0]
    assert (chat_a.trace_count, chat_a.flagged_count) == (2, 1)
    assert (chat_a.first_start_ns, chat_a.last_start_ns) == (T0, T0 + 30 * SECOND)
    assert [s.session_id for s in list_sessions(db, search="B")] == ["chat-b"]
    assert [s.session_id for s in list_sessions(db, limit=1, offset=1)] == ["chat-b"]
    assert _names(list_traces(db, session_id="chat-a", order="start")) == ["a1", "a2"]


def test_findings_overview_counts_per_check_and_day(engine: sa.Engine, db: Session) -> None:
    one = store(engine, agent_trace(name="one"))
    two = store(engine, agent_trace(name="two", start_s=1))
    day0 = (T0 // DAY) * DAY
    for trace_id, status, when in [
        (one, "flagged", day0 + 5),
        (two, "passed", day0 + 6),
        (two, "flagged", day0 + DAY + 1),
    ]:
        add_finding(
            db,
            trace_id=trace_id,
            check_name="citation_support",
            check_version="1",
            status=status,
            created_ns=when,
        )
    add_finding(
        db,
        trace_id=one,
        check_name="tool_error",
        check_version="1",
        status="passed",
        created_ns=day0 + 7,
    )
    db.commit()
    rows = [
        (r.check_name, r.bucket_start_ns, r.total, r.flagged, r.rate) for r in findings_overview(db)
    ]
    assert rows == [
        ("citation_support", day0, 2, 1, 0.5),
        ("tool_error", day0, 1, 0, 0.0),
        ("citation_support", day0 + DAY, 1, 1, 1.0),
    ]
    assert [r.bucket_start_ns for r in findings_overview(db, since_ns=day0 + DAY)] == [day0 + DAY]
    hours = findings_overview(db, bucket="hour")
    assert {r.bucket_start_ns % (3600 * SECOND) for r in hours} == {0}
    with pytest.raises(ValueError, match="unknown bucket"):
        findings_overview(db, bucket="month")


def test_projects_never_see_each_other(engine: sa.Engine, db: Session) -> None:
    mine = store(engine, agent_trace(name="mine", session_id="s"), project_id="alpha")
    store(engine, agent_trace(name="theirs", session_id="s"), project_id="beta")
    add_finding(
        db,
        project_id="alpha",
        trace_id=mine,
        check_name="c",
        check_version="1",
        status="flagged",
    )
    db.commit()
    assert _names(list_traces(db, project_id="alpha")) == ["mine"]
    assert _names(list_traces(db, project_id="beta", search="paris")) == ["theirs"]
    assert list_traces(db, project_id="beta", check="c") == []
    assert [s.trace_count for s in list_sessions(db, project_id="beta")] == [1]
    assert findings_overview(db, project_id="beta") == []


def test_bounded_count(engine: sa.Engine, db: Session) -> None:
    for index in range(4):
        store(engine, agent_trace(name=f"t{index}", start_s=index))
    assert count_traces(db, at_most=10) == 4
    assert count_traces(db, at_most=4) == 4
    assert count_traces(db, at_most=2) == 3  # "more than 2"
    assert count_traces(db, at_most=2, status="error") == 0
