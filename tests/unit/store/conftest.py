"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from lucidtrace.store.engine import create_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A migrated store on each chosen backend (see ``--db``), disposed after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()
