"""Fixtures: record agent runs through the real tracer into a fresh store and read them back."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import lucidtrace as lt
from lucidtrace.store.engine import create_engine
from lucidtrace.store.models import DEFAULT_PROJECT_ID, Finding, Trace


class Recorder:
    """Records agent runs into one store; each run becomes a trace named after it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self._names = itertools.count()

    def record(self, agent: Callable[[], None], *, question: str = "q") -> str:
        """Run ``agent`` inside an agent span and return the id of its trace."""
        name = f"run-{next(self._names)}"
        lt.configure(database_url=self.url)
        try:
            with lt.span(name, kind="agent", input=question):
                agent()
            assert lt.flush(timeout=60)
        finally:
            lt.shutdown()
        with Session(self.engine) as session:
            trace_id = session.scalar(sa.select(Trace.trace_id).where(Trace.name == name))
        assert trace_id is not None
        return trace_id

    def findings(self, trace_id: str) -> list[Finding]:
        """The stored findings of a trace."""
        with Session(self.engine, expire_on_commit=False) as session:
            return list(
                session.scalars(
                    sa.select(Finding)
                    .where(Finding.project_id == DEFAULT_PROJECT_ID, Finding.trace_id == trace_id)
                    .order_by(Finding.id)
                )
            )

    def verdict(self, trace_id: str) -> str:
        """The stored verdict of a trace."""
        with Session(self.engine) as session:
            trace = session.get(Trace, (DEFAULT_PROJECT_ID, trace_id))
            assert trace is not None
            return trace.verdict


@pytest.fixture
def recorder(database_url: str) -> Iterator[Recorder]:
    """A recorder on a fresh store of each backend."""
    rec = Recorder(database_url)
    try:
        yield rec
    finally:
        rec.engine.dispose()


@pytest.fixture
def sqlite_recorder(sqlite_url: str) -> Iterator[Recorder]:
    """A recorder on a fresh SQLite store (for tests about the checks, not the database)."""
    rec = Recorder(sqlite_url)
    try:
        yield rec
    finally:
        rec.engine.dispose()
