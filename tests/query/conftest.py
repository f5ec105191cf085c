"""Fixtures of the query tests: a migrated store on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.store import create_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A migrated store on each chosen backend (see ``--db``)."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def db(engine: sa.Engine) -> Iterator[Session]:
    """A session on the store (reads see what the test ingested before)."""
    with Session(engine) as session:
        yield session
