"""Query plans of what a store function really runs (EXPLAIN on the captured SQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session


def query_plan(engine: sa.Engine, call: Callable[[Session], Any]) -> str:
    """The plans of the SELECTs that ``call`` runs, joined in one text."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            call(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    lines: list[str] = []
    with engine.connect() as conn:
        prefix = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        for statement, parameters in captured:
            rows = conn.exec_driver_sql(prefix + statement, parameters)
            lines.extend(str(row[-1]) for row in rows)
    return "\n".join(lines)
